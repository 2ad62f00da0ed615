"""The local web page (`glide serve`): generate, edit by painting a mask, upsample.

`studio` holds the logic and needs no Gradio; `app` is the Gradio page (install with
`pip install 'glide-diffusion[web]'`).
"""

from .studio import Job, Limits, Studio, read_upload

__all__ = ["Job", "Limits", "Studio", "read_upload"]

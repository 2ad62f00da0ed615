"""Gradio glue for the web page: the theme (system fonts only), error translation, following a job, and
starting the server.

Kept apart from `glide.web.app` (layout and wiring) so that each stays short; nothing here knows the tabs.
"""

from __future__ import annotations

import functools
import inspect
import os
import sys
import time
import traceback

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402

from ..errors import GlideError  # noqa: E402
from .studio import Studio, preview_images  # noqa: E402

PREVIEW_EVERY_S = 1.0  # how often a running job refreshes its preview images
_SYSTEM_FONTS = ["ui-sans-serif", "system-ui", "sans-serif"]
_MONO_FONTS = ["ui-monospace", "Consolas", "monospace"]


def theme() -> gr.themes.Theme:
    # System fonts only: the page must not fetch anything from outside this machine.
    return gr.themes.Default(font=_SYSTEM_FONTS, font_mono=_MONO_FONTS)


def _refused(e: Exception, before: int, after: int = 0) -> tuple:
    """An upload handler's answer to a refused file: a warning toast, the status text in its place among the
    outputs (`before` untouched outputs ahead of it, `after` behind), every other output left as it was."""
    gr.Warning(f"Upload refused: {e}")
    return (*[gr.skip()] * before, f"**Upload refused:** {e}", *[gr.skip()] * after)


def _guard(fn):
    """Show a problem the user can fix as its message; log anything else and say where to look."""

    def translate(e: Exception) -> gr.Error:
        if isinstance(e, gr.Error):
            return e
        if isinstance(e, GlideError):
            return gr.Error(str(e), print_exception=False)
        traceback.print_exc()
        return gr.Error(f"internal error ({type(e).__name__}: {e}); the server log has the details",
                        print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def run_stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as e:
                raise translate(e) from None

        return run_stream

    @functools.wraps(fn)
    def run(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            raise translate(e) from None

    return run


def _follow(studio: Studio, job, session, what: str, progress: gr.Progress, preview: bool):
    """Yield (images | None, status) while `job` runs; finally its result. Closing this generator (Gradio
    does when the user presses Stop) cancels the job between two sampler steps."""
    last, start = 0.0, time.monotonic()
    try:
        for step in job.steps():
            stage = f" (pass {step.stage + 1})" if step.stage else ""
            text = f"{what}{stage}: step {step.done}/{step.total}"
            progress((step.done, step.total), desc=text)
            now = time.monotonic()
            if preview and step.preview is not None and now - last >= PREVIEW_EVERY_S:
                last = now
                yield preview_images(step.preview), text
        try:
            images = job.result()
        except GlideError:
            if job.cancelled:
                yield None, "Stopped."
                return
            raise
        print(f"glide serve: {what.lower()} took {time.monotonic() - start:.1f} s", file=sys.stderr, flush=True)
        yield images, None
    finally:
        if job.running:  # Gradio closed this stream (Stop, or the page went away): stop sampling too
            job.cancel()
        studio.finish(session, job)


def _session(request: gr.Request | None) -> str | None:
    return getattr(request, "session_hash", None)


def launch(studio: Studio, host: str = "127.0.0.1", port: int = 7860, concurrency: int = 1, queue_size: int = 64,
           block: bool = True):
    """Start the server. `concurrency` jobs sample at once (they share the model); up to `queue_size` more
    wait in line."""
    if host not in ("127.0.0.1", "localhost", "::1"):
        print(f"warning: serving on {host}: anyone who can reach this machine on port {port} can use the "
              "page and its compute; there is no login.", file=sys.stderr)
    from .app import CSS, build_app  # the page's layout, which imports this module

    demo = build_app(studio)
    demo.queue(default_concurrency_limit=concurrency, max_size=queue_size)
    demo.launch(server_name=host, server_port=port, share=False, inbrowser=False, prevent_thread_lock=True,
                max_file_size=int(studio.limits.max_upload_mb * 2**20), show_error=True, ssr_mode=False,
                pwa=False, mcp_server=False, footer_links=[], theme=theme(), css=CSS, quiet=True)
    print(f"glide: serving on {demo.local_url} (Ctrl+C to stop)", file=sys.stderr, flush=True)
    if block:
        demo.block_thread()
    return demo

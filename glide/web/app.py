"""The Gradio page: Generate, Edit (paint a mask, describe the change, repeat), Sketch and Upsample.

Layout and wiring only; what each button does lives in `glide.web.studio`. Offline by default: no share
link, no analytics, fonts from the system, bound to 127.0.0.1.
"""

from __future__ import annotations

import hashlib
import os
import sys
import tempfile

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # before gradio is imported

import gradio as gr  # noqa: E402
from PIL import Image  # noqa: E402

from .. import defaults  # noqa: E402
from ..errors import GlideError  # noqa: E402
from ..samplers import GUIDABLE, SAMPLERS  # noqa: E402
from .glue import _follow, _guard, _refused, _session, launch, theme  # noqa: E402, F401  (launch: glide.web.app.launch)
from .script import EditScript  # noqa: E402
from .studio import Studio, canvas_image, edit_source, painted_mask, read_upload, sketch_source  # noqa: E402

# 64 px results are shown enlarged: keep their pixels sharp instead of blurring them.
CSS = "#gen-gallery img, #edit-gallery img, #sketch-gallery img, #up-input img { image-rendering: pixelated; }"
# The Sketch brushes: a few plain colours (the colour picker offers any other).
SKETCH_COLORS = ["#000000", "#ffffff", "#e03030", "#ff9a1f", "#ffd83b", "#3fae49", "#3b82f6", "#8b5cf6",
                 "#8b5a2b", "#f5c6a0"]


def build_app(studio: Studio) -> gr.Blocks:
    lim = studio.limits
    samplers = list(SAMPLERS)
    example = studio.prompts[0] if studio.prompts else "a caption, in the words of the training data"

    # Results and uploads live in Gradio's cache: files older than a day are deleted every hour.
    with gr.Blocks(title="glide", analytics_enabled=False, delete_cache=(3600, 86400)) as demo:
        gr.Markdown("## glide: text-guided diffusion\nGenerate from a caption, paint over a region and describe "
                    "what should be there, keep going.")
        gen_images = gr.State([])  # the last generated images, at full resolution
        gen_selected = gr.State(0)
        edit_current = gr.State(None)  # the image being edited (square, its own resolution)
        edit_history = gr.State([])  # earlier inputs, for Undo
        gen_settings = gr.State(None)  # how the gallery's images were made (for an exported script)
        edit_script = gr.State(None)  # how the edit input came to be (an EditScript, or None if unknown)
        edit_scripts = gr.State([])  # the scripts of the inputs on the undo history
        edit_last = gr.State(None)  # the settings and mask of the last edit
        edit_results = gr.State([])
        edit_selected = gr.State(0)
        up_current = gr.State(None)
        blank = Image.new("RGB", (studio.size, studio.size), "white")
        sketch_current = gr.State(blank)  # the image under the strokes (its own resolution)
        sketch_results = gr.State([])
        sketch_selected = gr.State(0)

        with gr.Tabs(selected="generate") as tabs:
            # -- Generate ------------------------------------------------------------------------
            with gr.Tab("Generate", id="generate"):
                with gr.Row():
                    with gr.Column(scale=1):
                        prompt = gr.Textbox(label="Prompt", placeholder=example, elem_id="gen-prompt")
                        with gr.Row():
                            gen_btn = gr.Button("Generate", variant="primary", elem_id="gen-run")
                            gen_stop = gr.Button("Stop", variant="stop", elem_id="gen-stop")
                        n_images = gr.Slider(1, lim.max_images, value=4, step=1, label="Images")
                        scale = gr.Slider(0, 15, value=defaults.GUIDANCE, step=0.5,
                                          label="Guidance scale (classifier-free)")
                        steps = gr.Slider(5, min(lim.max_steps, 200), value=defaults.STEPS, step=1, label="Steps")
                        sampler = gr.Dropdown(samplers, value=defaults.SAMPLER, label="Sampler")
                        seed = gr.Number(value=-1, precision=0, label="Seed (-1: random)", elem_id="gen-seed")
                        clip_scale = gr.Slider(0, 20, value=0, step=0.5, visible=studio.can_clip_guide,
                                               label=f"CLIP guidance scale (0 = off; needs {' or '.join(GUIDABLE)})")
                        upsample = gr.Checkbox(False, label="Upsample to 256 px", visible=studio.can_upsample)
                    with gr.Column(scale=2):
                        gallery = gr.Gallery(label="Results", columns=4, object_fit="contain", height=420, format="png",
                                             elem_id="gen-gallery", interactive=False)
                        gen_status = gr.Markdown(elem_id="gen-status")
                        with gr.Row():
                            to_edit = gr.Button("Edit selected", elem_id="gen-to-edit")
                            to_up = gr.Button("Upsample selected", elem_id="gen-to-up", visible=studio.can_upsample)
                        if studio.prompts:  # what the model was taught, in its words: a click fills the prompt
                            gr.Examples([[p] for p in studio.prompts], inputs=[prompt], examples_per_page=8,
                                        label="Captions from the model's training data", elem_id="gen-examples")

            # -- Edit ----------------------------------------------------------------------------
            with gr.Tab("Edit", id="edit"):
                with gr.Row():
                    with gr.Column(scale=1):
                        upload = gr.UploadButton("Upload an image", file_types=["image"], type="binary",
                                                 elem_id="edit-upload")
                        canvas = gr.ImageMask(label="Paint the region to change", type="pil", sources=[],
                                              image_mode="RGBA", format="png", layers=False, transforms=[], height=lim.canvas + 120,
                                              brush=gr.Brush(default_size=16, colors=["#ff00ff"], color_mode="fixed"),
                                              canvas_size=(lim.canvas, lim.canvas), elem_id="edit-canvas")
                        edit_prompt = gr.Textbox(label="What should be there", elem_id="edit-prompt")
                        with gr.Row():
                            edit_btn = gr.Button("Edit", variant="primary", elem_id="edit-run")
                            edit_stop = gr.Button("Stop", variant="stop", elem_id="edit-stop")
                            undo_btn = gr.Button("Undo", elem_id="edit-undo")
                        with gr.Accordion("Settings", open=True, elem_id="edit-settings"):
                            edit_n = gr.Slider(1, lim.max_images, value=2, step=1, label="Images")
                            edit_scale = gr.Slider(0, 15, value=defaults.INPAINT_GUIDANCE, step=0.5,
                                                   label="Guidance scale")
                            edit_steps = gr.Slider(5, min(lim.max_steps, 200), value=defaults.STEPS, step=1,
                                                   label="Steps")
                            edit_sampler = gr.Dropdown(samplers, value=defaults.SAMPLER, label="Sampler")
                            edit_seed = gr.Number(value=-1, precision=0, label="Seed (-1: random)", elem_id="edit-seed")
                    with gr.Column(scale=1):
                        edit_gallery = gr.Gallery(label="Edits", columns=2, object_fit="contain", height=420, format="png",
                                                  elem_id="edit-gallery", interactive=False)
                        edit_status = gr.Markdown(elem_id="edit-status")
                        use_btn = gr.Button("Use result as input", elem_id="edit-use")
                        export_btn = gr.Button("Export script", elem_id="edit-export")
                        export_file = gr.File(label="Scene script for glide compose", interactive=False,
                                              elem_id="edit-script")

            # -- Sketch --------------------------------------------------------------------------
            with gr.Tab("Sketch", id="sketch"):
                with gr.Row():
                    with gr.Column(scale=1):
                        with gr.Row():
                            sketch_upload = gr.UploadButton("Upload an image", file_types=["image"], type="binary",
                                                            elem_id="sketch-upload")
                            sketch_blank = gr.Button("Blank canvas", elem_id="sketch-blank")
                        sketch_canvas = gr.ImageEditor(
                            value=canvas_image(blank, lim.canvas), label="Draw (pick a colour and size in the brush menu)",
                            type="pil", sources=[], image_mode="RGBA", format="png", layers=False, transforms=[],
                            height=lim.canvas + 120, canvas_size=(lim.canvas, lim.canvas), elem_id="sketch-canvas",
                            brush=gr.Brush(default_size=12, colors=SKETCH_COLORS, default_color=SKETCH_COLORS[2],
                                           color_mode="defaults"))
                        sketch_prompt = gr.Textbox(label="What it shows", placeholder=example,
                                                   elem_id="sketch-prompt")
                        sketch_strength = gr.Slider(0, 1, value=defaults.SKETCH_STRENGTH, step=0.05,
                                                    elem_id="sketch-strength",
                                                    label="Strength (0 = keep the drawing, 1 = ignore it)")
                        with gr.Row():
                            sketch_btn = gr.Button("Generate", variant="primary", elem_id="sketch-run")
                            sketch_stop = gr.Button("Stop", variant="stop", elem_id="sketch-stop")
                        with gr.Accordion("Settings", open=False, elem_id="sketch-settings"):
                            sketch_n = gr.Slider(1, lim.max_images, value=2, step=1, label="Images")
                            sketch_scale = gr.Slider(0, 15, value=defaults.GUIDANCE, step=0.5, label="Guidance scale")
                            sketch_steps = gr.Slider(5, min(lim.max_steps, 200), value=defaults.STEPS, step=1,
                                                     label="Steps")
                            sketch_sampler = gr.Dropdown(samplers, value=defaults.SAMPLER, label="Sampler")
                            sketch_seed = gr.Number(value=-1, precision=0, label="Seed (-1: random)",
                                                    elem_id="sketch-seed")
                            sketch_clip = gr.Slider(0, 20, value=0, step=0.5, visible=studio.can_clip_guide,
                                                    label="CLIP guidance scale (0 = off; needs ddpm or ddim)")
                    with gr.Column(scale=1):
                        sketch_gallery = gr.Gallery(label="Results", columns=2, object_fit="contain", height=420,
                                                    format="png", elem_id="sketch-gallery", interactive=False)
                        sketch_status = gr.Markdown(elem_id="sketch-status")
                        sketch_use = gr.Button("Use result as input", elem_id="sketch-use")

            # -- Upsample ------------------------------------------------------------------------
            with gr.Tab("Upsample", id="upsample", visible=studio.can_upsample):
                with gr.Row():
                    with gr.Column(scale=1):
                        up_upload = gr.UploadButton("Upload an image", file_types=["image"], type="binary",
                                                    elem_id="up-upload")
                        up_input = gr.Image(label="64 px input", interactive=False, type="pil", height=280,
                                            format="png", elem_id="up-input")
                        up_prompt = gr.Textbox(label="Prompt", elem_id="up-prompt")
                        with gr.Row():
                            up_btn = gr.Button("Upsample", variant="primary", elem_id="up-run")
                            up_stop = gr.Button("Stop", variant="stop", elem_id="up-stop")
                    with gr.Column(scale=1):
                        up_output = gr.Image(label="256 px", interactive=False, type="pil", height=280,
                                             format="png", elem_id="up-output")
                        up_status = gr.Markdown(elem_id="up-status")

        # -- handlers ------------------------------------------------------------------------------
        @_guard
        def on_generate(text, n, g, st, smp, sd, cg, up, request: gr.Request, progress=gr.Progress()):
            session = _session(request)
            job, used_seed = studio.generate(text, num_images=n, guidance_scale=g, steps=st, sampler=smp,
                                             seed=sd, clip_guidance_scale=cg, upsample=up, session=session)
            settings = dict(prompt=text.strip(), n=int(n), guidance=float(g), steps=int(st), sampler=smp,
                            seed=used_seed, clip_scale=float(cg), upsample=bool(up),
                            guidance_interval=studio.guidance_interval("generate"))
            for images, status in _follow(studio, job, session, "Generating", progress, preview=True):
                if status is not None:
                    yield images if images is not None else gr.skip(), status, gr.skip(), gr.skip(), gr.skip()
                else:
                    yield (images, f"{len(images)} image{'s' * (len(images) > 1)}, seed {used_seed}", images, 0,
                           settings)

        @_guard
        def on_edit(value, current, text, n, g, st, smp, sd, script, request: gr.Request, progress=gr.Progress()):
            session = _session(request)
            value = value or {}
            source = edit_source(current, value.get("background"), lim.canvas)
            if source is not current and source is not None:  # a picture dropped on the canvas: start from it
                script = EditScript.from_image(source, studio.size, studio.model)
            current = source
            if current is None:
                raise GlideError("choose an image to edit first (upload one, or send a generated one)")
            repaint = painted_mask(value.get("layers"), current.size[0])
            job, used_seed = studio.edit(current, repaint, text, num_images=n, guidance_scale=g, steps=st,
                                         sampler=smp, seed=sd, session=session)
            last = dict(prompt=text.strip(), n=int(n), guidance=float(g), steps=int(st), sampler=smp,
                        seed=used_seed, guidance_interval=studio.guidance_interval("edit"), repaint=repaint,
                        script=script)
            for images, status in _follow(studio, job, session, "Editing", progress, preview=False):
                if status is not None:
                    yield gr.skip(), status, gr.skip(), gr.skip(), gr.skip()
                else:
                    yield images, f"{len(images)} edit{'s' * (len(images) > 1)}, seed {used_seed}", images, 0, last

        @_guard
        def on_sketch(value, current, text, strength, n, g, st, smp, sd, cg, request: gr.Request,
                      progress=gr.Progress()):
            session = _session(request)
            value = value or {}
            image = sketch_source(value.get("composite"), value.get("layers"), current, studio.size)
            job, used_seed = studio.sketch(image, text, strength=strength, num_images=n, guidance_scale=g, steps=st,
                                           sampler=smp, seed=sd, clip_guidance_scale=cg, session=session)
            for images, status in _follow(studio, job, session, "Sketching", progress, preview=True):
                if status is not None:
                    yield images if images is not None else gr.skip(), status, gr.skip(), gr.skip()
                else:
                    yield images, f"{len(images)} image{'s' * (len(images) > 1)}, seed {used_seed}", images, 0

        def sketch_on(image: Image.Image):
            """`image` becomes the sketch's background; its strokes and results are cleared."""
            return image, canvas_image(image, lim.canvas), []

        @_guard
        def on_sketch_upload(data: bytes):
            try:
                image = read_upload(data, lim)
            except GlideError as e:
                return _refused(e, 3)
            image = canvas_image(image, min(min(image.size), 2 * lim.canvas))
            return *sketch_on(image), "Image loaded: draw on it."

        @_guard
        def sketch_use_result(results, index):
            return *sketch_on(pick(results, index, "generate from a sketch")), "Result loaded: draw the next change."

        @_guard
        def on_upsample(current, text, request: gr.Request, progress=gr.Progress()):
            session = _session(request)
            job, used_seed = studio.upsample(current, text, session=session)
            for images, status in _follow(studio, job, session, "Upsampling", progress, preview=False):
                if status is not None:
                    yield gr.skip(), status
                else:
                    yield images[0], f"256 px, seed {used_seed}"

        @_guard
        def on_stop(request: gr.Request):
            return "Stopped." if studio.cancel(_session(request)) else gr.skip()

        def start_editing(image: Image.Image, current, history, script, scripts, new_script):
            """`image` (made as `new_script` says) becomes the edit input; the previous one goes on the undo
            history. Returns the new (current, history, canvas, edit results, script, scripts)."""
            if current is not None and current is not image:
                history = (history + [current])[-lim.history:]
                scripts = (scripts + [script])[-lim.history:]
            return image, history, canvas_image(image, lim.canvas), [], new_script, scripts

        @_guard
        def on_upload(data: bytes, current, history, script, scripts):
            try:
                image = read_upload(data, lim)
            except GlideError as e:
                return _refused(e, 3, 3)
            image = canvas_image(image, min(min(image.size), 2 * lim.canvas))
            current, history, shown, results, script, scripts = start_editing(
                image, current, history, script, scripts, EditScript.from_image(image, studio.size, studio.model))
            return current, history, shown, "Image loaded: paint over the region to change.", results, script, scripts

        def pick(images, index, what: str) -> Image.Image:
            """The selected image of a gallery (the first if none was clicked)."""
            if not images:
                raise gr.Error(f"{what} first")
            return images[min(int(index or 0), len(images) - 1)]

        @_guard
        def send(images, index, current, history, settings, script, scripts):
            image = pick(images, index, "generate something")
            index = min(int(index or 0), len(images) - 1)
            new = (EditScript.from_generated(settings, index, image, studio.size, studio.model) if settings
                   else EditScript.from_image(image, studio.size, studio.model))
            current, history, shown, results, script, scripts = start_editing(image, current, history, script,
                                                                               scripts, new)
            return current, history, shown, "", results, gr.Tabs(selected="edit"), script, scripts

        @_guard
        def use_result(results, index, current, history, script, scripts, last):
            image = pick(results, index, "make an edit")
            made_from = last and last["script"]  # the script of the input these results were edited from
            k = min(int(index or 0), len(results) - 1)
            new = made_from.inpainted(last, last["repaint"], k) if made_from else None
            current, history, shown, _, script, scripts = start_editing(image, current, history, script, scripts, new)
            return current, history, shown, "Result loaded: paint the next change.", script, scripts

        @_guard
        def undo(current, history, scripts):
            if not history:
                raise gr.Error("nothing to undo")
            *history, previous = history
            *scripts, script = scripts or [None]
            return (previous, history, canvas_image(previous, lim.canvas), f"Undone ({len(history)} more to undo).",
                    script, scripts)

        exports = tempfile.TemporaryDirectory(prefix="glide-export-")  # one file per session, removed at exit

        @_guard
        def export(script, request: gr.Request):
            if script is None:
                raise GlideError("nothing to export yet: generate or upload an image, edit it, use a result")
            # The session id comes from the browser: hash it rather than trust it as a path.
            folder = os.path.join(exports.name, hashlib.sha256((_session(request) or "").encode()).hexdigest()[:16])
            os.makedirs(folder, exist_ok=True)
            path = os.path.join(folder, "scene.zip")
            with open(path, "wb") as f:
                f.write(script.to_zip())
            steps = len(script.steps)
            return path, f"Script exported: {steps} step{'s' * (steps > 1)}; unzip it and run glide compose scene.toml"

        @_guard
        def to_upsample(images, index):
            image = pick(images, index, "generate something")
            return image, image, gr.Tabs(selected="upsample")

        @_guard
        def on_up_upload(data: bytes):
            try:
                image = read_upload(data, lim)
            except GlideError as e:
                return _refused(e, 2)
            return image, image, "Image loaded."

        def selected(evt: gr.SelectData):
            return evt.index

        # -- wiring --------------------------------------------------------------------------------
        gen_inputs = [prompt, n_images, scale, steps, sampler, seed, clip_scale, upsample]
        gen_outputs = [gallery, gen_status, gen_images, gen_selected, gen_settings]
        gen_event = gen_btn.click(on_generate, gen_inputs, gen_outputs, api_name="generate", concurrency_id="model")
        prompt.submit(on_generate, gen_inputs, gen_outputs, concurrency_id="model", api_visibility="private")
        gen_stop.click(on_stop, None, gen_status, cancels=[gen_event], queue=False, api_visibility="private")
        gallery.select(selected, None, gen_selected, queue=False, api_visibility="private")

        edit_event = edit_btn.click(
            on_edit, [canvas, edit_current, edit_prompt, edit_n, edit_scale, edit_steps, edit_sampler, edit_seed,
                      edit_script],
            [edit_gallery, edit_status, edit_results, edit_selected, edit_last], api_visibility="private",
            concurrency_id="model")
        edit_stop.click(on_stop, None, edit_status, cancels=[edit_event], queue=False, api_visibility="private")
        edit_gallery.select(selected, None, edit_selected, queue=False, api_visibility="private")
        upload.upload(on_upload, [upload, edit_current, edit_history, edit_script, edit_scripts],
                      [edit_current, edit_history, canvas, edit_status, edit_results, edit_script, edit_scripts],
                      api_visibility="private")
        to_edit.click(send, [gen_images, gen_selected, edit_current, edit_history, gen_settings, edit_script,
                             edit_scripts],
                      [edit_current, edit_history, canvas, edit_status, edit_results, tabs, edit_script, edit_scripts],
                      api_visibility="private")
        use_btn.click(use_result, [edit_results, edit_selected, edit_current, edit_history, edit_script, edit_scripts,
                                   edit_last],
                      [edit_current, edit_history, canvas, edit_status, edit_script, edit_scripts],
                      api_visibility="private")
        undo_btn.click(undo, [edit_current, edit_history, edit_scripts],
                       [edit_current, edit_history, canvas, edit_status, edit_script, edit_scripts],
                       api_visibility="private")
        export_btn.click(export, edit_script, [export_file, edit_status], api_visibility="private")

        sketch_event = sketch_btn.click(
            on_sketch, [sketch_canvas, sketch_current, sketch_prompt, sketch_strength, sketch_n, sketch_scale,
                        sketch_steps, sketch_sampler, sketch_seed, sketch_clip],
            [sketch_gallery, sketch_status, sketch_results, sketch_selected], api_visibility="private",
            concurrency_id="model")
        sketch_stop.click(on_stop, None, sketch_status, cancels=[sketch_event], queue=False, api_visibility="private")
        sketch_gallery.select(selected, None, sketch_selected, queue=False, api_visibility="private")
        sketch_upload.upload(on_sketch_upload, sketch_upload,
                             [sketch_current, sketch_canvas, sketch_results, sketch_status], api_visibility="private")
        sketch_blank.click(lambda: (*sketch_on(blank), "Blank canvas."), None,
                           [sketch_current, sketch_canvas, sketch_results, sketch_status], api_visibility="private")
        sketch_use.click(sketch_use_result, [sketch_results, sketch_selected],
                         [sketch_current, sketch_canvas, sketch_results, sketch_status], api_visibility="private")

        up_event = up_btn.click(on_upsample, [up_current, up_prompt], [up_output, up_status],
                                api_visibility="private", concurrency_id="model")
        up_stop.click(on_stop, None, up_status, cancels=[up_event], queue=False, api_visibility="private")
        to_up.click(to_upsample, [gen_images, gen_selected], [up_current, up_input, tabs], api_visibility="private")
        to_up.click(lambda text: text, prompt, up_prompt, queue=False, api_visibility="private")
        to_edit.click(lambda text: text, prompt, edit_prompt, queue=False, api_visibility="private")
        up_upload.upload(on_up_upload, up_upload, [up_current, up_input, up_status], api_visibility="private")
    return demo

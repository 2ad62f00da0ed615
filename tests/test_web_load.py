"""Load: 8 clients generate at once through the queue (gradio_client); every job completes and each client
gets its own images, the same pixels as a direct Pipeline call with its prompt and seed."""

import threading

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import free_port

from glide.config import get_preset
from glide.models import GLIDE
from glide.pipeline import Pipeline
from glide.web.studio import Studio

gradio_client = pytest.importorskip("gradio_client", reason="pip install 'glide-diffusion[web]'")
from glide.web.app import launch  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_thread")
CLIENTS = 8


class CountingStudio(Studio):
    """Records how many jobs sample at the same moment."""

    active = peak = 0
    lock = threading.Lock()

    def start(self, session, work, previews=False):
        def counted(callback):
            with self.lock:
                CountingStudio.active += 1
                CountingStudio.peak = max(CountingStudio.peak, CountingStudio.active)
            try:
                return work(callback)
            finally:
                with self.lock:
                    CountingStudio.active -= 1

        return super().start(session, counted, previews)


@pytest.fixture(scope="module")
def server():
    torch.manual_seed(0)
    pipe = Pipeline(GLIDE(get_preset("tiny")), "cpu")
    demo = launch(CountingStudio(pipe), port=free_port(), concurrency=1, queue_size=2 * CLIENTS, block=False)
    yield pipe, demo.local_url
    demo.close()


def test_eight_concurrent_clients_each_get_their_own_images(server, tmp_path):
    pipe, url = server
    jobs = [(f"prompt number {k}", 100 + k, 1 + k % 3) for k in range(CLIENTS)]  # prompt, seed, images
    results, errors = {}, []
    start = threading.Barrier(CLIENTS)

    def client(k):
        try:
            prompt, seed, n = jobs[k]
            c = gradio_client.Client(url, verbose=False, download_files=str(tmp_path / f"c{k}"))
            start.wait()  # all submit together
            gallery, status = c.predict(prompt, n, 3.0, 6, "dpm++2m", seed, 0, False, api_name="/generate")
            results[k] = ([np.asarray(Image.open(item["image"]).convert("RGB")) for item in gallery], status)
        except Exception as e:  # reported below, with the client's number
            errors.append((k, repr(e)))

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    assert not errors, errors
    assert sorted(results) == list(range(CLIENTS)), "a request was lost"
    assert CountingStudio.peak == 1, "the concurrency limit (1) was not kept"
    for k, (prompt, seed, n) in enumerate(jobs):
        images, status = results[k]
        assert status == f"{n} image{'s' * (n > 1)}, seed {seed}"
        expected = pipe(prompt, n, guidance_scale=3.0, steps=6, sampler="dpm++2m", seed=seed, progress=False)
        assert len(images) == n
        for got, want in zip(images, expected):
            assert np.array_equal(got, np.asarray(want)), f"client {k} got someone else's image"


def test_serving_beyond_this_machine_prints_a_warning(capsys):
    pipe = Pipeline(GLIDE(get_preset("tiny")), "cpu")
    demo = launch(Studio(pipe), host="0.0.0.0", port=free_port(), block=False)
    demo.close()
    err = capsys.readouterr().err
    assert "warning: serving on 0.0.0.0" in err and "no login" in err


def test_only_the_documented_endpoint_is_published(server):
    """docs/web.md documents one API endpoint, /generate; the page's other handlers are private."""
    _, url = server
    api = gradio_client.Client(url, verbose=False).view_api(print_info=False, return_format="dict")
    assert set(api["named_endpoints"]) == {"/generate"}
    assert not api["unnamed_endpoints"]

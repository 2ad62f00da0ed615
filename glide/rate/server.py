"""`glide rate serve`: a blind pairwise-comparison page (the standard library's threading HTTP server).

Raters see a caption and two images in random left/right order, never the model names, and answer the paper's
questions (or skip). Routes:
    GET  /                    the page
    GET  /api/next?rater=ID   a new comparison: {token, caption, questions}; images at /img/TOKEN/left|right
    POST /api/vote            {token, rater, answers: {question: left|right|skip}} -> {stored, duplicates}
"""

from __future__ import annotations

import json
import random
import re
import secrets
import sys
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from ..errors import GlideError
from .store import VoteStore

QUESTIONS = {  # the questions of GLIDE's human evaluation (section 5.2)
    "realism": "Which image is more photorealistic?",
    "caption": "Which image matches the caption better?",
}
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
RATER = re.compile(r"[\w.@-]{1,64}")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".webp")


@dataclass
class SampleSet:
    """One model's samples: caption -> image files (in name order)."""

    name: str
    by_caption: dict[str, list[Path]]


def eval_samples_to_folder(folder: Path) -> Path:
    """A `glide eval` setting's cached samples (EVAL_OUT/samples/g3/b0000-KEY.npz ...) -> a captioned image
    folder EVAL_OUT/captioned/g3/ (written once). The captions are the evaluation's own: its results.json
    names the data, splits, n and seed that chose them, so the data must still be where it was."""
    import numpy as np
    from PIL import Image

    from ..evaluation.evaluate import EvalConfig, load_reference
    from ..images import save_atomic

    eval_dir = folder.parent.parent
    out = eval_dir / "captioned" / folder.name
    if out.is_dir():
        return out
    batches: dict[int, list[Path]] = {}
    for p in folder.glob("b*-*.npz"):
        batches.setdefault(int(p.name[1:5]), []).append(p)
    if any(len(v) > 1 for v in batches.values()) or sorted(batches) != list(range(len(batches))):
        raise GlideError(f"{folder} holds samples of several evaluation runs (or a partial one); rate a fresh --out")
    try:
        doc = json.loads((eval_dir / "results.json").read_text())["config"]
    except (OSError, json.JSONDecodeError, KeyError):
        raise GlideError(f"{eval_dir}/results.json is missing or unreadable: is this a glide eval folder?") from None
    if doc.get("command") == "coco":
        raise GlideError("samples of glide eval coco cannot be captioned again here; use glide sample folders")
    images = np.concatenate([np.load(batches[b][0])["x"] for b in sorted(batches)])
    cfg = EvalConfig(data=doc["data"], splits=tuple(doc["splits"]), n=doc["n"], seed=doc["seed"])
    _, captions, _ = load_reference(cfg, images.shape[1])
    if len(captions) != len(images):
        raise GlideError(f"{folder}: {len(images)} samples but the evaluation drew {len(captions)} captions")
    tmp = out.with_name(f".{out.name}.tmp")
    for k, (im, cap) in enumerate(zip(images, captions)):
        save_atomic(Image.fromarray(im), tmp / f"{k:05d}.png")
        (tmp / f"{k:05d}.txt").write_text(cap + "\n", encoding="utf-8")
    tmp.replace(out)
    return out


def read_samples(name: str, folder: str | Path) -> SampleSet:
    """Images with same-named .txt captions (what `glide sample` writes beside its individual images), a
    manifest.jsonl of {"image", "caption"} rows, or a `glide eval` setting's folder (EVAL_OUT/samples/g3)."""
    root = Path(folder)
    if not root.is_dir():
        raise GlideError(f"sample folder not found: {root}")
    if any(root.glob("b0000-*.npz")):
        root = eval_samples_to_folder(root)
    found: dict[str, list[Path]] = {}
    manifest = root / "manifest.jsonl"
    if manifest.is_file():
        for n, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
            if line.strip():
                try:
                    row = json.loads(line)
                    found.setdefault(row["caption"].strip(), []).append(root / row["image"])
                except (json.JSONDecodeError, KeyError, TypeError, AttributeError):
                    raise GlideError(f"{manifest}:{n}: expected a JSON object with 'image' and 'caption'") from None
    else:
        for p in sorted(root.rglob("*")):
            if p.suffix.lower() in IMAGE_EXTS and p.with_suffix(".txt").is_file():
                found.setdefault(p.with_suffix(".txt").read_text(encoding="utf-8").strip(), []).append(p)
    if not found:
        raise GlideError(f"{root}: no captioned images (image + same-named .txt, or manifest.jsonl)")
    return SampleSet(name, found)


def parse_samples(specs: list[str]) -> list[SampleSet]:
    sets = []
    for spec in specs:
        name, sep, folder = spec.partition("=")
        if not sep or not re.fullmatch(r"[\w.-]+", name) or not folder:
            raise GlideError(f"--samples expects NAME=FOLDER (NAME of letters, digits, '_', '-', '.'), got {spec!r}")
        sets.append(read_samples(name, folder))
    if len(sets) < 2 or len({s.name for s in sets}) != len(sets):
        raise GlideError("--samples needs at least two differently named sample folders")
    return sets


class Comparisons:
    """Every (caption, model pair, image k) that both models have; drawn least-rated-first for each rater."""

    def __init__(self, sets: list[SampleSet], questions: list[str], seed: int | None = None):
        self.questions = questions
        self.items = []
        for i, a in enumerate(sets):
            for b in sets[i + 1:]:
                for caption in sorted(set(a.by_caption) & set(b.by_caption)):
                    for ia, ib in zip(a.by_caption[caption], b.by_caption[caption]):
                        self.items.append((caption, a.name, b.name, ia, ib))
        if not self.items:
            raise GlideError("the sample folders share no caption: nothing to compare")
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.shown: dict[str, dict[int, int]] = {}  # rater -> item -> times served

    def draw(self, rater: str) -> tuple:
        with self.lock:
            counts = self.shown.setdefault(rater, {})
            low = min(counts.get(k, 0) for k in range(len(self.items)))
            k = self.rng.choice([k for k in range(len(self.items)) if counts.get(k, 0) == low])
            counts[k] = counts.get(k, 0) + 1
            swap = self.rng.random() < 0.5
        return self.items[k], swap


PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Which image?</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
 body { font-family: system-ui, sans-serif; max-width: 760px; margin: 1.5em auto; padding: 0 1em; color: #222; }
 #caption { font-size: 1.3em; margin: .6em 0 1em; min-height: 1.5em; }
 .pair { display: flex; gap: 1.5em; justify-content: center; }
 .pair figure { margin: 0; text-align: center; }
 .pair img { width: 300px; height: 300px; image-rendering: pixelated; border: 1px solid #bbb; background: #eee; }
 .question { margin: 1.2em 0; text-align: center; }
 .question button { font-size: 1em; padding: .4em 1.4em; margin: 0 .3em; }
 .question button.chosen { background: #2a6; color: white; }
 #controls { text-align: center; margin-top: 1.2em; }
 #status { color: #666; text-align: center; margin-top: .8em; min-height: 1.2em; }
 #rater { color: #666; font-size: .9em; }
</style></head>
<body>
<h2>Which image?</h2>
<div id="rater"></div>
<div id="caption"></div>
<div class="pair">
 <figure><img id="left-img" alt="left image"><figcaption>Left</figcaption></figure>
 <figure><img id="right-img" alt="right image"><figcaption>Right</figcaption></figure>
</div>
<div id="questions"></div>
<div id="controls"><button id="submit" disabled>Submit</button> <button id="skip">Skip this pair</button></div>
<div id="status"></div>
<script>
const params = new URLSearchParams(location.search);
let rater = params.get("rater") || localStorage.getItem("glide-rater");
if (!rater) { rater = "r" + Math.random().toString(36).slice(2, 10); }
localStorage.setItem("glide-rater", rater);
document.getElementById("rater").textContent = "rater id: " + rater;
let current = null, answers = {}, votes = 0;

function setStatus(t) { document.getElementById("status").textContent = t; }

async function next() {
  const r = await fetch("api/next?rater=" + encodeURIComponent(rater));
  if (!r.ok) { setStatus("error: " + (await r.text())); return; }
  current = await r.json(); answers = {};
  document.getElementById("caption").textContent = "\\u201c" + current.caption + "\\u201d";
  document.getElementById("left-img").src = "img/" + current.token + "/left";
  document.getElementById("right-img").src = "img/" + current.token + "/right";
  const qs = document.getElementById("questions"); qs.innerHTML = "";
  for (const q of current.questions) {
    const div = document.createElement("div"); div.className = "question"; div.dataset.q = q.id;
    const p = document.createElement("p"); p.textContent = q.text; div.appendChild(p);
    for (const side of ["left", "right"]) {
      const b = document.createElement("button"); b.textContent = side === "left" ? "Left" : "Right";
      b.dataset.side = side; b.className = "answer";
      b.onclick = () => { answers[q.id] = side;
        div.querySelectorAll("button").forEach(x => x.classList.toggle("chosen", x === b));
        document.getElementById("submit").disabled = Object.keys(answers).length < current.questions.length; };
      div.appendChild(b);
    }
    qs.appendChild(div);
  }
  document.getElementById("submit").disabled = true;
  document.getElementById("skip").disabled = false;
  document.body.dataset.token = current.token;  // the comparison on screen (tests wait for it to change)
}

async function send(all) {
  document.getElementById("submit").disabled = true;  // one send per comparison, even on a double click
  document.getElementById("skip").disabled = true;
  const body = JSON.stringify({token: current.token, rater: rater, answers: all});
  for (let attempt = 0; attempt < 5; attempt++) {  // the same token again is harmless: stored once
    try {
      const r = await fetch("api/vote", {method: "POST", headers: {"Content-Type": "application/json"}, body});
      if (r.ok) { votes += 1; setStatus(votes + " comparison" + (votes > 1 ? "s" : "") + " sent, thank you");
                  return next(); }
      setStatus("error: " + (await r.text())); return;
    } catch (e) { setStatus("network error, retrying..."); await new Promise(f => setTimeout(f, 1000)); }
  }
}
document.getElementById("submit").onclick = () => send(answers);
document.getElementById("skip").onclick = () => {
  const all = {}; for (const q of current.questions) all[q.id] = "skip"; send(all); };
next();
</script></body></html>
"""


class RateServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, store: VoteStore, comparisons: Comparisons):
        self.store, self.comparisons = store, comparisons
        self.images: dict[str, tuple[Path, Path]] = {}  # token -> (left, right), for the image routes
        self.lock = threading.Lock()
        super().__init__(address, Handler)


class Handler(BaseHTTPRequestHandler):
    server: RateServer

    def log_message(self, fmt, *args):  # quiet: one line per request would drown the terminal
        pass

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def _json(self, code: int, obj) -> None:
        self._send(code, json.dumps(obj).encode(), "application/json")

    def _error(self, code: int, msg: str) -> None:
        self._send(code, msg.encode(), "text/plain; charset=utf-8")

    def do_GET(self):
        try:
            url = urlparse(self.path)
            if url.path in ("/", "/index.html"):
                return self._send(200, PAGE.encode(), "text/html; charset=utf-8")
            if url.path == "/api/next":
                rater = parse_qs(url.query).get("rater", [""])[0]
                if not RATER.fullmatch(rater):
                    return self._error(400, "rater id: 1-64 letters, digits, '_', '-', '.', '@'")
                return self._json(200, self._next(rater))
            m = re.fullmatch(r"/img/([\w-]+)/(left|right)", url.path)
            if m:
                with self.server.lock:
                    files = self.server.images.get(m.group(1))
                if files is None:
                    comp = self.server.store.comparison(m.group(1))  # served before a restart
                    if comp is None:
                        return self._error(404, "no such comparison")
                    a, b = Path(comp["image_a"]), Path(comp["image_b"])
                    files = (a, b) if comp["left_model"] == comp["model_a"] else (b, a)
                path = files[0 if m.group(2) == "left" else 1]
                ctype = "image/png" if path.suffix.lower() == ".png" else "image/jpeg" \
                    if path.suffix.lower() in (".jpg", ".jpeg") else "image/webp"
                return self._send(200, path.read_bytes(), ctype)
            return self._error(404, "not found")
        finally:
            self.server.store.close()

    def do_POST(self):
        try:
            if urlparse(self.path).path != "/api/vote":
                return self._error(404, "not found")
            try:
                n = int(self.headers.get("Content-Length", "0"))
                if not 0 < n <= 64_000:
                    return self._error(400, "bad request size")
                body = json.loads(self.rfile.read(n))
                token, rater, answers = body["token"], body["rater"], body["answers"]
                assert isinstance(token, str) and isinstance(rater, str) and isinstance(answers, dict)
            except (ValueError, KeyError, AssertionError, TypeError):
                return self._error(400, "expected JSON {token, rater, answers: {question: left|right|skip}}")
            comp = self.server.store.comparison(token)
            if comp is None or comp["rater"] != rater:
                return self._error(400, "unknown comparison token for this rater")
            questions = comp["questions"].split(",")
            if set(answers) != set(questions) or not all(a in ("left", "right", "skip") for a in answers.values()):
                return self._error(400, f"answer each of {questions} with left, right or skip")
            right_model = comp["model_b"] if comp["left_model"] == comp["model_a"] else comp["model_a"]
            stored = dup = 0
            for q, a in answers.items():
                winner = None if a == "skip" else comp["left_model"] if a == "left" else right_model
                if self.server.store.vote(token, q, rater, a, winner):
                    stored += 1
                else:
                    dup += 1
            return self._json(200, {"stored": stored, "duplicates": dup})
        finally:
            self.server.store.close()

    def _next(self, rater: str) -> dict:
        comps = self.server.comparisons
        (caption, ma, mb, ia, ib), swap = comps.draw(rater)
        token = secrets.token_urlsafe(16)
        left_model, files = (mb, (ib, ia)) if swap else (ma, (ia, ib))
        self.server.store.serve(token, rater, caption, ma, mb, str(ia), str(ib), left_model, comps.questions)
        with self.server.lock:
            self.server.images[token] = files
        return {"token": token, "caption": caption,
                "questions": [{"id": q, "text": QUESTIONS[q]} for q in comps.questions]}


def make_server(sets: list[SampleSet], db: str | Path, question: str = "both", host: str = "127.0.0.1",
                port: int = 8765, allow_remote: bool = False, seed: int | None = None) -> RateServer:
    if host not in LOCAL_HOSTS and not allow_remote:
        raise GlideError(f"refusing to serve on {host}: anyone who can reach it could vote. Pass --allow-remote "
                         "to serve beyond this machine (there is no login)")
    questions = list(QUESTIONS) if question == "both" else [question]
    store = VoteStore(db)
    try:
        return RateServer((host, port), store, Comparisons(sets, questions, seed))
    except OSError as e:
        raise GlideError(f"cannot listen on {host}:{port}: {e.strerror or e}") from None


def serve(args) -> int:
    sets = parse_samples(args.samples)
    server = make_server(sets, args.db, args.question, args.host, args.port, args.allow_remote)
    n = len(server.comparisons.items)
    if args.host not in LOCAL_HOSTS:
        print(f"warning: serving on {args.host}: anyone who can reach this machine on port {args.port} can vote "
              "(no login)", file=sys.stderr)
    print(f"glide rate: {n} comparisons of {', '.join(s.name for s in sets)}; votes go to {args.db}",
          file=sys.stderr)
    print(f"glide rate: serving on http://{args.host}:{server.server_address[1]}/ (Ctrl+C to stop)",
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0

"""glide rate: the report's maths against closed forms, the vote API (blind, idempotent, restart-safe), and a
load test: 8 concurrent clients (bounded loops, localhost) each vote; every vote sent is stored exactly once."""

import json
import math
import sqlite3
import threading
import urllib.error
import urllib.request

import numpy as np
import pytest
from PIL import Image

from helpers import free_port

from glide.errors import GlideError
from glide.rate.server import make_server, parse_samples
from glide.rate.stats import Z95, agreement, bradley_terry, elo, summarize, wilson, win_matrix


# -- maths -------------------------------------------------------------------------------------------


def votes_of(counts: dict[tuple[str, str], tuple[int, int]], question="caption") -> list[dict]:
    """(a, b) -> (a wins, b wins) as vote dicts, every vote on its own caption."""
    out = []
    for (a, b), (wa, wb) in counts.items():
        for k, winner in enumerate([a] * wa + [b] * wb):
            out.append({"question": question, "model_a": a, "model_b": b, "winner": winner, "rater": "r",
                        "caption": f"{a}{b}{k}", "image_a": "x", "image_b": "y"})
    return out


def test_wilson_closed_forms():
    # 100% of n: the interval is [n / (n + z^2), 1]; 0 of n mirrors it; half of n is centred on 0.5 with
    # width z / sqrt(n + z^2).
    n = 20
    lo, hi = wilson(n, n)
    assert hi == 1.0 and lo == pytest.approx(n / (n + Z95**2))
    assert wilson(0, n) == pytest.approx((0.0, Z95**2 / (n + Z95**2)))
    lo, hi = wilson(10, 20)
    assert (lo + hi) / 2 == pytest.approx(0.5) and hi - lo == pytest.approx(Z95 / math.sqrt(20 + Z95**2))


def test_a_100_percent_winner():
    s = summarize(votes_of({("A", "B"): (12, 0)}), bootstrap=50)["caption"]
    p = s["pairs"][0]
    assert (p["a_wins"], p["b_wins"], p["a_win_rate"]) == (12, 0, 1.0)
    assert p["ci95"] == pytest.approx([12 / (12 + Z95**2), 1.0])
    assert s["elo"] is None and "never lost" in s["elo_note"]  # the MLE does not exist: no made-up number


def test_equal_models():
    s = summarize(votes_of({("A", "B"): (15, 15)}), bootstrap=200)["caption"]
    assert s["pairs"][0]["a_win_rate"] == 0.5
    assert s["elo"]["A"]["elo"] == pytest.approx(1000) and s["elo"]["B"]["elo"] == pytest.approx(1000)
    lo, hi = s["elo"]["A"]["ci95"]
    assert lo < 1000 < hi


def test_known_bradley_terry_example():
    # Strengths 4 : 2 : 1 give P(A>B) = 2/3, P(B>C) = 2/3, P(A>C) = 4/5. Counts exactly in those proportions
    # satisfy the likelihood equations, so the MLE is the true strengths and the Elo gaps are 400 log10 ratios.
    counts = {("A", "B"): (20, 10), ("B", "C"): (20, 10), ("A", "C"): (24, 6)}
    s = bradley_terry(win_matrix([(v["model_a"], v["model_b"], v["winner"]) for v in votes_of(counts)],
                                 ["A", "B", "C"]))
    assert s / s[2] == pytest.approx([4, 2, 1], rel=1e-8)
    e = summarize(votes_of(counts), bootstrap=100)["caption"]["elo"]
    assert e["A"]["elo"] - e["B"]["elo"] == pytest.approx(400 * math.log10(2), abs=1e-6)
    assert e["A"]["elo"] - e["C"]["elo"] == pytest.approx(400 * math.log10(4), abs=1e-6)
    assert np.mean([e[m]["elo"] for m in "ABC"]) == pytest.approx(1000)
    # two models: the MLE log-odds is log(wins_a / wins_b)
    two = bradley_terry(np.array([[0.0, 30], [10, 0]]))
    assert elo(two)[0] - elo(two)[1] == pytest.approx(400 * math.log10(3))


def test_agreement_closed_forms():
    # Every item answered the same way by everyone: kappa 1. Two raters always disagreeing on balanced
    # answers: observed 0, chance 0.5, kappa -1.
    a = agreement({1: ["A", "A", "A"], 2: ["B", "B"], 3: ["A"]})
    assert a["items"] == 2 and a["observed"] == 1 and a["kappa"] == pytest.approx(1)
    a = agreement({1: ["A", "B"], 2: ["B", "A"]})
    assert a["observed"] == 0 and a["chance"] == 0.5 and a["kappa"] == pytest.approx(-1)
    assert agreement({1: ["A"]}) is None


# -- the server ----------------------------------------------------------------------------------------


@pytest.fixture
def samples(tmp_path):
    """Two 'models', 4 captions each (+ one caption only one of them has); pixels tell the model apart."""
    dirs = {}
    for name, colour in (("g1", (200, 40, 40)), ("g3", (40, 40, 200))):
        d = tmp_path / name
        d.mkdir()
        for k in range(4 + (name == "g1")):
            Image.new("RGB", (16, 16), colour).save(d / f"s_{k:03d}.png")
            (d / f"s_{k:03d}.txt").write_text(f"caption {k}\n")
        dirs[name] = d
    return dirs


def start(samples, db, **kw):
    srv = make_server(parse_samples([f"{n}={d}" for n, d in samples.items()]), db, port=free_port(), seed=0, **kw)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv, f"http://127.0.0.1:{srv.server_address[1]}"


def get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.read()


def post(url, obj):
    req = urllib.request.Request(url, json.dumps(obj).encode(), {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def test_votes_are_blind_idempotent_and_survive_a_restart(samples, tmp_path):
    db = tmp_path / "votes.sqlite"
    srv, url = start(samples, db)
    try:
        page = get(url + "/").decode()
        assert 'id="left-img"' in page and 'id="right-img"' in page
        assert "g1" not in page and "g3" not in page
        nxt = json.loads(get(url + "/api/next?rater=alice"))
        # Blind: no setting's name in what the rater is sent. The random base64 token is left out of the check:
        # it contains "g1" or "g3" about once in fifty draws (a fresh-clone run saw "...Sg3lRJ...").
        shown = json.dumps({k: v for k, v in nxt.items() if k != "token"})
        assert "g1" not in shown and "g3" not in shown
        assert [q["text"] for q in nxt["questions"]] == ["Which image is more photorealistic?",
                                                          "Which image matches the caption better?"]
        assert nxt["caption"] in {f"caption {k}" for k in range(4)}  # caption 4 has no partner
        left = np.asarray(Image.open(__import__("io").BytesIO(get(f"{url}/img/{nxt['token']}/left"))))
        vote = {"token": nxt["token"], "rater": "alice", "answers": {"realism": "left", "caption": "skip"}}
        assert post(url + "/api/vote", vote) == {"stored": 2, "duplicates": 0}
        assert post(url + "/api/vote", vote) == {"stored": 0, "duplicates": 2}  # a resend counts once
        for bad in ({**vote, "rater": "bob"}, {**vote, "token": "nope"}, {**vote, "answers": {"realism": "up"}}):
            with pytest.raises(urllib.error.HTTPError) as e:
                post(url + "/api/vote", bad)
            assert e.value.code == 400
    finally:
        srv.shutdown()
        srv.server_close()
    # the winner stored is the model whose image was on the left (told apart by its colour)
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    rows = dict(con.execute("SELECT question, winner FROM votes").fetchall())
    assert rows["caption"] is None and rows["realism"] == ("g1" if left[0, 0, 0] == 200 else "g3")
    con.close()
    srv, url = start(samples, db)  # a restart: the old token still resolves, and is still counted once
    try:
        assert post(url + "/api/vote", vote) == {"stored": 0, "duplicates": 2}
        assert get(f"{url}/img/{nxt['token']}/left")[:4] == b"\x89PNG"
    finally:
        srv.shutdown()
        srv.server_close()


def test_refuses_remote_binding_unless_asked(samples, tmp_path):
    with pytest.raises(GlideError, match="refusing to serve on 0.0.0.0"):
        make_server(parse_samples([f"{n}={d}" for n, d in samples.items()]), tmp_path / "v.sqlite", host="0.0.0.0")
    with pytest.raises(GlideError, match="NAME=FOLDER"):
        parse_samples([str(samples["g1"])])
    with pytest.raises(GlideError, match="at least two"):
        parse_samples([f"a={samples['g1']}"])


CLIENTS, ROUNDS = 8, 12


def test_eight_concurrent_clients_every_vote_stored_exactly_once(samples, tmp_path):
    db = tmp_path / "votes.sqlite"
    srv, url = start(samples, db)
    sent, errors = {}, []
    barrier = threading.Barrier(CLIENTS)

    def client(k):
        rng = np.random.default_rng(k)
        mine = []
        try:
            barrier.wait()
            for _ in range(ROUNDS):  # bounded
                nxt = json.loads(get(f"{url}/api/next?rater=c{k}"))
                answers = {q["id"]: str(rng.choice(["left", "right", "skip"])) for q in nxt["questions"]}
                vote = {"token": nxt["token"], "rater": f"c{k}", "answers": answers}
                assert post(url + "/api/vote", vote)["stored"] == 2
                if rng.random() < 0.3:  # a retry after a 'lost' reply
                    assert post(url + "/api/vote", vote)["stored"] == 0
                mine.append(vote)
        except Exception as e:  # reported below
            errors.append((k, repr(e)))
        sent[k] = mine

    threads = [threading.Thread(target=client, args=(k,)) for k in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    srv.shutdown()
    srv.server_close()
    assert not errors, errors
    expected = {(v["token"], q): (v["rater"], a) for votes in sent.values() for v in votes for q, a in v["answers"].items()}
    con = sqlite3.connect(db)
    rows = con.execute("SELECT token, question, rater, answer FROM votes").fetchall()
    con.close()
    stored = {(t, q): (r, a) for t, q, r, a in rows}
    print(f"load test: {len(expected)} votes sent by {CLIENTS} clients, {len(rows)} rows stored")
    assert len(rows) == len(expected) == CLIENTS * ROUNDS * 2  # each vote once: no loss, no double count
    assert stored == expected


def test_report_cli(samples, tmp_path, capsys):
    from glide.cli import main

    db = tmp_path / "votes.sqlite"
    srv, url = start(samples, db)
    try:
        for k in range(6):
            nxt = json.loads(get(f"{url}/api/next?rater=r{k % 2}"))
            comp = sqlite3.connect(db).execute("SELECT left_model FROM comparisons WHERE token = ?",
                                               (nxt["token"],)).fetchone()[0]
            side = "left" if comp == "g3" else "right"  # this rater always prefers g3
            post(url + "/api/vote", {"token": nxt["token"], "rater": f"r{k % 2}",
                                     "answers": {"realism": side, "caption": side if k else "skip"}})
    finally:
        srv.shutdown()
        srv.server_close()
    assert main(["rate", "report", "--db", str(db), "--json", "--bootstrap", "50", "--plot",
                 str(tmp_path / "plot.png")]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["realism"]["pairs"][0]["b_wins"] == 6 and s["realism"]["pairs"][0]["a_win_rate"] == 0.0
    assert s["caption"]["skips"] == 1 and s["caption"]["decided"] == 5
    with Image.open(tmp_path / "plot.png") as im:
        assert im.size[0] == 640


def test_report_of_a_missing_db_is_a_clear_error(tmp_path, capsys):
    from glide.cli import main

    assert main(["rate", "report", "--db", str(tmp_path / "missing.sqlite")]) == 2
    assert "votes database not found" in capsys.readouterr().err
    assert not (tmp_path / "missing.sqlite").exists()


def test_glide_eval_sample_folders_are_captioned_from_the_evaluation(tmp_path):
    """An eval setting's cached batches + results.json -> captioned images, the captions the evaluation drew."""
    from glide.evaluation.evaluate import EvalConfig, load_reference
    from glide.rate.server import read_samples

    data = tmp_path / "emoji_64.npz"
    caps = [f"emoji {k}, twemoji style" for k in range(10)]
    np.savez(data, images=np.zeros((10, 64, 64, 3), np.uint8), captions=np.array(caps),
             split=np.array(["heldout_emoji"] * 10))
    cfg = EvalConfig(data=str(data), splits=("heldout_emoji",), n=5, seed=3)
    _, drawn, _ = load_reference(cfg, 64)
    ev = tmp_path / "eval"
    (ev / "samples" / "g3").mkdir(parents=True)
    (ev / "results.json").write_text(json.dumps({"config": {"command": "eval", "data": str(data),
                                                            "splits": ["heldout_emoji"], "n": 5, "seed": 3}}))
    x = np.stack([np.full((64, 64, 3), 10 * k, np.uint8) for k in range(5)])
    np.savez(ev / "samples" / "g3" / "b0000-abc.npz", x=x[:4], seconds=1.0)
    np.savez(ev / "samples" / "g3" / "b0001-def.npz", x=x[4:], seconds=1.0)
    s = read_samples("g3", ev / "samples" / "g3")
    assert sorted(s.by_caption) == sorted(drawn)
    for k, cap in enumerate(drawn):
        assert np.asarray(Image.open(s.by_caption[cap][0]))[0, 0, 0] == 10 * k

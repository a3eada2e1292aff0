"""Instructions per request, counted by valgrind (issue 10): a figure that does not drift.

``make bench`` measures milliseconds under gunicorn, and this machine's speed drifts by up to
2 × from minute to minute, so a change of a few per cent in a page's cost is lost in its
noise. ``valgrind --tool=callgrind`` counts the instructions the CPU runs instead: nearly the
same for the same code, data and interpreter whatever else the machine does (within 1–3 %
here, the bare route's within 5 %: the hash seeds, the garbage collector). This runs each
page in-process (the Flask test client, the production configuration on the large SQLite
dataset that ``make bench`` loads, one depositor logged in through the real login; for
``card_move`` the clerk, through password and TOTP, moving a card of the benchmark's between
受理 and 补件 as ``make bench`` does, each count its own card) under callgrind twice, with 5
and with 45 requests after a warm-up, and prints the difference over 40: what one request
costs, start-up and warm-up cancelled out.

    .venv/bin/python bench/instructions.py                    # bare, summary, loan
    .venv/bin/python bench/instructions.py --pages loan,summary
    .venv/bin/python bench/instructions.py --pages bare,card_move   # the clerk's move

Compare two versions of the code by running it in each checkout (a ``git worktree`` of the
old commit beside this one); the ratio of a page to the bare route compares across machines.
Needs valgrind (Debian's package) and the large SQLite dataset (``make bench`` or
``bench/run.py --db sqlite --dataset large --only bare`` loads it).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import run as bench  # noqa: E402  (bench/run.py: the datasets, the keys, the subjects)

PAGES = ("bare", "summary", "deposit_detail", "loan", "card_move")
CSRF = re.compile(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"')
FEW, MANY = 5, 45


def _requests(person: dict) -> dict[str, tuple[str, dict]]:
    """The page's URL and headers, as ``make bench`` asks for them."""
    return {
        "bare": ("/healthz/bare", {}),
        "summary": ("/me/", {}),
        "deposit_detail": ("/me/deposits?page=1", {"HX-Request": "true"}),  # the fragment
        "loan": (f"/me/loans/{person['loan_id']}", {}),
    }


def _staff_login(client, db, username: str) -> str:
    """The clerk's real login (password, then a TOTP code); the page's CSRF token."""
    token = CSRF.search(client.get("/staff/login").text).group(1)
    form = {"csrf_token": token, "username": username, "password": bench.STAFF_PASSWORD}
    if client.post("/staff/login", data=form).status_code != 303:
        raise SystemExit("staff login refused")
    for _ in range(3):  # the other count logs the same clerk in: a code is accepted once
        code = bench.totp_code(db, username)
        response = client.post("/staff/login/totp", data={"csrf_token": token, "code": code})
        if response.status_code == 303:
            return token
    raise SystemExit(f"staff TOTP refused ({response.status_code})")


def _card_moves(client, db, card: dict, requests: int) -> None:
    """The benchmark's card move (``make bench``'s card_move): the clerk moves one outbound card
    between 受理 and 补件, saying what the tab shows; warm-up and counted moves alternate the
    direction, so 40 more moves are 20 each way."""
    token = _staff_login(client, db, "clerk")
    tab = bench.BoardTab(client.get("/staff/board/outbound").text)
    for _ in range(3 + requests):
        target = "supplement" if card["state"] == "accepted" else "accepted"
        form = {"target": target, "version": card["version"], "from_state": card["state"]}
        if target == "supplement":
            form |= {"with_data": "1", f"c{card['id']}-other": "购房合同原件"}
        response = client.post(
            f"/staff/board/case/{card['id']}/move",
            data=form | tab.seen(),
            headers={"HX-Request": "true", "X-CSRFToken": token},
        )
        if response.status_code != 200:
            raise SystemExit(f"card move: {response.status_code}")
        tab.apply(response.text)
        card.update(state=target, version=card["version"] + 1)


def child(page: str, requests: int) -> None:
    """Inside valgrind: log in, warm up, then ``requests`` requests of ``page``."""
    ds = bench.Dataset("sqlite", "large", f"sqlite:///{bench.BENCH_DIR / 'large.db'}")
    os.environ.update(bench.portal_env(ds.url, ds.storage))
    subjects = bench.subjects(ds)
    bench._close()
    from portal import create_app

    app = create_app()
    person = subjects.depositors[0]
    client = app.test_client()
    if page == "card_move":  # the two counts run at once: each moves its own card
        _card_moves(client, bench.Db(ds), dict(subjects.move_cards[requests == MANY]), requests)
        return
    page_html = client.get("/login").text
    token = re.search(r'name="csrf_token" (?:type="hidden" )?value="([^"]+)"', page_html)
    form = {"csrf_token": token.group(1), "resident_id": person["resident_id"]}
    response = client.post("/login", data=form | {"password": bench.DEPOSITOR_PASSWORD})
    if response.status_code != 303:
        raise SystemExit(f"login refused ({response.status_code})")
    code = bench.Db(ds).last_sms_code(person["phone"])  # the app's database is open
    response = client.post("/login/code", data={"csrf_token": form["csrf_token"], "code": code})
    if response.status_code != 303:
        raise SystemExit(f"SMS code refused ({response.status_code})")
    url, headers = _requests(person)[page]
    for _ in range(3 + requests):  # three to warm up (templates compiled, caches filled)
        response = client.get(url, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"{url}: {response.status_code}")


def _count(page: str, requests: int) -> int:
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        str(Path(__file__).resolve()),
        "--child",
        page,
        str(requests),
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    found = re.search(r"Collected : (\d+)", done.stderr)
    if done.returncode != 0 or not found:
        raise SystemExit(f"{page}: valgrind failed\n{done.stderr[-2000:]}")
    return int(found.group(1))


def per_request(page: str) -> int:
    return (_count(page, MANY) - _count(page, FEW)) // (MANY - FEW)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", default="bare,summary,loan", help="comma-separated")
    parser.add_argument("--child", nargs=2, metavar=("PAGE", "N"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child[0], int(args.child[1]))
        return
    pages = [p for p in args.pages.split(",") if p]
    unknown = sorted(set(pages) - set(PAGES))
    if unknown:
        raise SystemExit(f"unknown pages {unknown}; choose from {', '.join(PAGES)}")
    if shutil.which("valgrind") is None:
        raise SystemExit("valgrind is not installed (apt-get install -y valgrind)")
    if not (bench.BENCH_DIR / "large.db").exists():
        raise SystemExit("no large SQLite dataset: run `make bench` (or bench/run.py) first")
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        counts = dict(zip(pages, pool.map(per_request, pages), strict=True))
    bare = counts.get("bare")
    print(f"{'page':16} {'instructions':>14} {'÷ bare':>8}")
    for page, count in counts.items():
        ratio = f"{count / bare:8.2f}" if bare else ""
        print(f"{page:16} {count:14,} {ratio}")


if __name__ == "__main__":
    main()

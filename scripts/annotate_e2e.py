#!/usr/bin/env python3
"""Browser end-to-end test of the annotation UI (`warden label serve`), in headless Chromium.

Run by scripts/annotate_e2e.sh, which prepares the store and starts the server:

    annotate_e2e.py --url http://127.0.0.1:PORT --db STORE.sqlite --password PW

It checks that:
  (a) annotator `ann` signs in, her first pending assignment opens, its text is shown as text
      (markup in it is not rendered), every category is set with the keyboard shortcuts and
      clicks (the hierarchy auto-set included), Enter submits, the queue moves on, and her
      labels for that sample are in the store's `labels` table with the chosen values;
  (b) `ann` cannot read `ben`'s assignment: opening it in the UI shows an error and none of
      ben's text, and `fetch` from her page to `/api/assignments/<ben's id>` returns 403
      (and so does a write); a wrong password shows an error.

Prints PASS/FAIL lines; exits 1 on any failure.
"""

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import traceback

from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import WebDriverWait

CATEGORIES = ["S", "H", "V", "HR", "SH", "S3", "H2", "V2"]
# What ann answers for her first sample (after the hierarchy round trip on H/H2 below).
CHOSEN = {"S": "neg", "H": "neg", "V": "pos", "HR": "unsure", "SH": "neg", "S3": "neg", "H2": "neg", "V2": "pos"}

failures = []


def check(name, ok, detail=""):
    if ok:
        print(f"PASS: {name}")
    else:
        print(f"FAIL: {name}" + (f" -- {detail}" if detail else ""))
        failures.append(name)
    return ok


class Fatal(Exception):
    pass


def require(name, ok, detail=""):
    if not check(name, ok, detail):
        raise Fatal(name)


def db_rows(db, sql, args=()):
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def first_assignment(db, user, status="pending"):
    rows = db_rows(
        db,
        """SELECT a.id, a.sample_id, s.text FROM assignments a
           JOIN users u ON u.id = a.user_id JOIN samples s ON s.id = a.sample_id
           WHERE u.name = ? AND a.status = ? ORDER BY a.batch_id, a.position LIMIT 1""",
        (user, status),
    )
    return rows[0] if rows else None


def make_driver(profile):
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
    for a in [
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--window-size=1400,1000",
        f"--user-data-dir={profile}",
    ]:
        opts.add_argument(a)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver"))
    drv = webdriver.Chrome(service=service, options=opts)
    drv.set_script_timeout(10)
    return drv


def wait(drv, cond, what, timeout=10):
    try:
        return WebDriverWait(drv, timeout).until(lambda d: cond(d))
    except TimeoutException:
        raise Fatal(f"timed out waiting for {what}")


def by_id(drv, i):
    return drv.find_element(By.ID, i)


def visible(drv, i):
    try:
        return by_id(drv, i).is_displayed()
    except Exception:
        return False


def pressed(drv, code):
    """The value whose button is pressed for a category, or ''."""
    for v in ("pos", "neg", "unsure"):
        b = drv.find_element(By.CSS_SELECTOR, f'[data-cat="{code}"] [data-value="{v}"]')
        if b.get_attribute("aria-pressed") == "true":
            return v
    return ""


def click(drv, css):
    e = drv.find_element(By.CSS_SELECTOR, css)
    drv.execute_script("arguments[0].scrollIntoView({block: 'center'});", e)
    e.click()


def keys(drv, *ks):
    ActionChains(drv).send_keys(*ks).perform()


def js_fetch(drv, method, path, body=None, ui_header=True):
    return drv.execute_async_script(
        """
        const [method, path, body, uiHeader, done] = arguments;
        const headers = {'Content-Type': 'application/json'};
        if (uiHeader) headers['X-Warden-UI'] = '1';
        const opts = {method, credentials: 'same-origin', headers};
        if (body !== null) opts.body = JSON.stringify(body);
        fetch(path, opts).then(r => r.text().then(t => done([r.status, t])))
          .catch(e => done([0, String(e)]));
        """,
        method,
        path,
        body,
        ui_header,
    )


def sign_in(drv, user, password):
    u, p = by_id(drv, "username"), by_id(drv, "password")
    u.clear()
    u.send_keys(user)
    p.clear()
    p.send_keys(password)
    by_id(drv, "login").click()


def run(args):
    ann_first = first_assignment(args.db, "ann")
    ben_first = first_assignment(args.db, "ben")
    require("store has a pending assignment for ann and for ben", ann_first and ben_first, f"{ann_first} {ben_first}")
    ann_id, ann_sample, ann_text = ann_first
    ben_id, ben_sample, ben_text = ben_first
    ann_total = db_rows(args.db, "SELECT COUNT(*) FROM assignments a JOIN users u ON u.id = a.user_id WHERE u.name = 'ann'")[0][0]

    profile = tempfile.mkdtemp(prefix="warden-e2e-chromium-")
    drv = make_driver(profile)
    try:
        drv.get(args.url + "/")
        wait(drv, lambda d: visible(d, "login-view"), "the sign-in form")
        check("sign-in form shown, app hidden", not visible(drv, "app-view"))

        # Wrong password.
        sign_in(drv, "ann", args.password + "-wrong")
        wait(drv, lambda d: visible(d, "error"), "an error after a wrong password")
        err = by_id(drv, "error").text
        check("wrong password shows an error", "wrong" in err.lower(), err)
        check("wrong password does not sign in", not visible(drv, "app-view") and visible(drv, "login-view"))

        # (a) sign in as ann and label her first assignment.
        sign_in(drv, "ann", args.password)
        wait(drv, lambda d: visible(d, "sample-panel") and by_id(d, "sample-text").text.strip(), "ann's first sample")
        check("signed in as ann", by_id(drv, "user-name").text == "ann" and by_id(drv, "user-role").text == "annotator")
        check("error cleared after sign-in", not visible(drv, "error"), by_id(drv, "error").text)
        progress = by_id(drv, "progress").text
        check("progress shown", progress.startswith(f"0 of {ann_total} done, 0 skipped"), progress)
        check("first pending assignment opened", drv.current_url.endswith(f"#/a/{ann_id}"), drv.current_url)
        shown = by_id(drv, "sample-text").text
        check("sample text shown verbatim", shown.strip() == ann_text.strip(), f"{shown!r} vs {ann_text!r}")
        if "<" in ann_text:
            imgs = drv.find_elements(By.CSS_SELECTOR, "#sample-text *")
            xss = drv.execute_script("return window.__xss === undefined ? null : window.__xss;")
            check("markup in the sample is text, not HTML (no elements, no script ran)", not imgs and xss is None)
        check("batch kind shown", by_id(drv, "batch-kind").text == "label", by_id(drv, "batch-kind").text)
        for code in CATEGORIES:
            fs = drv.find_element(By.CSS_SELECTOR, f'fieldset[data-cat="{code}"]')
            if code in ("S", "H", "V"):
                check(f"{code} shows what not to flag", "do not flag" in fs.text.lower(), fs.text[:200])
        check("keyboard legend shown", "Enter" in by_id(drv, "shortcuts").text)

        # Enter with nothing labelled: refused client-side, nothing written.
        keys(drv, Keys.ENTER)
        wait(drv, lambda d: visible(d, "error"), "the incomplete-labels error")
        check("submitting without labels is refused", "missing" in by_id(drv, "error").text.lower(), by_id(drv, "error").text)

        # Hierarchy: clicking H2 positive makes H positive; H negative then lowers H2.
        click(drv, '[data-cat="H2"] [data-value="pos"]')
        check("positive H2 sets parent H positive", pressed(drv, "H") == "pos" and pressed(drv, "H2") == "pos")
        keys(drv, "2", "n")
        check("negative H lowers H2", pressed(drv, "H") == "neg" and pressed(drv, "H2") == "neg",
              f"H={pressed(drv, 'H')} H2={pressed(drv, 'H2')}")

        # Keyboard: 1 selects S; p/n/u set and advance.  S n, H n, V p, HR u, SH n, S3 n, H2 n.
        keys(drv, "1", "n", "n", "p", "u", "n", "n", "n")
        # V2 by click, then j/k navigation round trip (back to V2 and set it again by key).
        click(drv, '[data-cat="V2"] [data-value="pos"]')
        keys(drv, "k", "j", "p")
        got = {c: pressed(drv, c) for c in CATEGORIES}
        check("every category set as chosen", got == CHOSEN, f"{got}")

        keys(drv, Keys.ENTER)
        wait(drv, lambda d: by_id(d, "progress").text.startswith(f"1 of {ann_total} done"), "progress after submit")
        check("progress after submit", True)
        moved = not drv.current_url.endswith(f"#/a/{ann_id}")
        check("moved on to the next pending assignment (or the done view)", moved, drv.current_url)

        rows = db_rows(
            args.db,
            """SELECT l.category, l.value FROM labels l JOIN users u ON u.id = l.user_id
               WHERE u.name = 'ann' AND l.sample_id = ?""",
            (ann_sample,),
        )
        check("ann's labels are in the labels table with the chosen values", dict(rows) == CHOSEN, f"{dict(rows)}")
        status = db_rows(args.db, "SELECT status FROM assignments WHERE id = ?", (ann_id,))[0][0]
        check("ann's assignment is done", status == "done", status)

        # (b) ann cannot read ben's assignment.
        drv.get(f"{args.url}/#/a/{ben_id}")
        wait(drv, lambda d: visible(d, "error") and "forbidden" in by_id(d, "error").text.lower(), "the forbidden error")
        check("opening ben's assignment shows an error", True)
        check("none of ben's text on the page", ben_text.strip() not in drv.page_source
              and not by_id(drv, "sample-text").text.strip())
        check("no label controls for ben's assignment", not visible(drv, "label-panel") and not visible(drv, "sample-panel"))

        status, text = js_fetch(drv, "GET", f"/api/assignments/{ben_id}")
        check("fetch of ben's assignment from ann's page -> 403", status == 403 and '"forbidden"' in text, f"{status} {text[:200]}")
        check("403 body carries none of ben's text", ben_text.strip() not in text)
        status, text = js_fetch(drv, "POST", f"/api/assignments/{ben_id}/labels", {"labels": {c: "neg" for c in CATEGORIES}})
        check("writing ben's labels from ann's page -> 403", status == 403, f"{status} {text[:200]}")
        status, text = js_fetch(drv, "POST", f"/api/assignments/{ann_id}/skip", {}, ui_header=False)
        check("a write without X-Warden-UI -> 403 csrf_header_missing", status == 403 and "csrf_header_missing" in text, f"{status} {text[:200]}")
        ben_labels = db_rows(args.db, "SELECT COUNT(*) FROM labels WHERE assignment_id = ?", (ben_id,))[0][0]
        ben_status = db_rows(args.db, "SELECT status FROM assignments WHERE id = ?", (ben_id,))[0][0]
        check("ben's assignment untouched", ben_labels == 0 and ben_status == "pending", f"{ben_labels} {ben_status}")

        # Sign out ends the session.
        by_id(drv, "logout").click()
        wait(drv, lambda d: visible(d, "login-view"), "the sign-in form after sign-out")
        status, _ = js_fetch(drv, "GET", "/api/me")
        check("signed out: /api/me -> 401", status == 401, str(status))
    except Fatal as e:
        print(f"FAIL: {e}")
        failures.append(str(e))
        try:
            print("  page error box:", by_id(drv, "error").text)
            print("  url:", drv.current_url)
            for entry in drv.get_log("browser"):
                print("  console:", entry)
        except Exception:
            pass
    finally:
        drv.quit()
        shutil.rmtree(profile, ignore_errors=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--url", required=True)
    ap.add_argument("--db", required=True)
    ap.add_argument("--password", default=os.environ.get("WARDEN_PASSWORD"))
    args = ap.parse_args()
    if not args.password:
        ap.error("--password or WARDEN_PASSWORD is needed")
    try:
        run(args)
    except Exception:
        traceback.print_exc()
        failures.append("unexpected exception")
    if failures:
        print(f"annotate e2e: {len(failures)} check(s) FAILED")
        sys.exit(1)
    print("annotate e2e: all checks PASSED")


if __name__ == "__main__":
    main()

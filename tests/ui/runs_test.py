"""runs_test.py (ui.runs): action runs in headless Chromium.

A bulk run started through the API is listed in #/runs; its page follows it live (server-sent
events: the bar moves); Cancel stops it part-way (cancelled, as the API says); Resume takes it
on to done with every item done once; a read-only user sees the run but no Cancel/Resume, and
the API refuses them anyway; the page is readable at a phone's width.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402

N = 120


def api_run(ui, rid):
    return ui.call("GET", "/api/runs/%d" % rid)[1]["data"]


def main():
    ui = UI(sys.argv)
    T = ui.T
    try:
        ips = os.path.join(ui.work, "ips.txt")
        with open(ips, "w") as f:
            f.write("".join("10.70.%d.%d\n" % (i // 250, i % 250 + 1) for i in range(N)))
        ui.srv.cli("indicator", "import", ips, "--source", "Feed R")
        ui.srv.cli("collection", "add", "feed-r", "--source", "Feed R")
        st, b, _ = ui.call("POST", "/api/actions/rst-ioc-lookup-action/runs",
                           {"collection": "feed-r", "concurrency": 2}, "ana")
        T.check("set-up: a run over %d indicators" % N, st == 202, (st, b))
        rid = b["data"]["id"]

        ui.login("ana")
        ui.go("/runs")
        T.check("#/runs lists the run", ("#%d" % rid) in ui.text_of("#runs"), ui.text_of("#runs"))
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#runs a[href='#/runs/%d']" % rid)
        ui.wait_rendered()
        ui.wait_text("#run-live", "live")
        v0 = ui.js("return document.getElementById('run-progress').value")
        time.sleep(1.5)
        v1 = ui.js("return document.getElementById('run-progress').value")
        T.check("the bar moves while the run goes on (%s -> %s of %d)" % (v0, v1, N),
                v1 > v0 and v1 < N, (v0, v1))
        T.check("done/total, rate and ETA are shown", "items/s" in ui.text_of("#run-numbers") and
                "ETA" in ui.text_of("#run-numbers"), ui.text_of("#run-numbers"))
        ui.screenshot("run-live")

        # ---- cancel, then resume ----
        ui.click("#run-cancel")
        ui.wait_text("#run-state", "cancelled", timeout=30)
        r = api_run(ui, rid)
        T.check("cancel: the run stops part-way, cancelled as the API says (%d of %d)" %
                (r["done"], N), r["state"] == "cancelled" and 0 < r["done"] < N, r)
        ui.wait_for("#run-resume")
        ui.screenshot("run-cancelled")
        ui.click("#run-resume")
        ui.wait_text("#run-state", "done", timeout=90)
        r = api_run(ui, rid)
        T.check("resume: to done, every item once (%d enriched of %d)" % (r["enriched"], N),
                r["state"] == "done" and r["done"] == N and r["enriched"] == N, r)
        T.check("the page shows the final counts", ("%d enriched" % N) in ui.text_of("#run-numbers"),
                ui.text_of("#run-numbers"))

        # ---- a phone's width ----
        ui.viewport(390, 844)
        time.sleep(0.3)
        T.check("readable at 390px: nothing wider than the screen",
                ui.js("return document.documentElement.scrollWidth") <= 392,
                ui.js("return document.documentElement.scrollWidth"))
        ui.screenshot("run-phone")
        ui.viewport(1280, 800)

        # ---- read-only ----
        st, b, _ = ui.call("POST", "/api/actions/rst-ioc-lookup-action/runs",
                           {"collection": "feed-r", "concurrency": 1}, "ana")
        rid2 = b["data"]["id"]
        ui.logout()
        ui.login("ro")
        ui.go("/runs/%d" % rid2)
        T.check("read-only: the run's page without Cancel or Resume",
                not ui.exists("#run-cancel") and not ui.exists("#run-resume"), ui.main_text()[:200])
        st, b, _ = ui.call("POST", "/api/runs/%d/cancel" % rid2, None, "ro")
        T.check("... and the API refuses a read-only cancel (403)", st == 403, (st, b))
        ui.call("POST", "/api/runs/%d/cancel" % rid2, None, "ana")
    except Exception as e:  # noqa: BLE001
        T.check("the flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-runs")
        except Exception:  # noqa: BLE001
            pass
    ui.done()


if __name__ == "__main__":
    main()

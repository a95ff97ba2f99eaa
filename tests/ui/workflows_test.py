"""workflows_test.py (ui.workflows): data collections, workflows and their activity in headless
Chromium.

A collection made from the library's filters; its count in the collections list; "new workflow
over it": the form built from the action's config fields; run now: the run's page shows live
progress from server-sent events (the bar moves while the run goes on), then done; the workflow's
activity shows the run's counts as the API has them; deleting the collection is refused (the
API's 409 naming the workflow, shown as text); with the provider down the failures come grouped
by reason with the failed values, and "retry failed" (provider back) ends with none; a hostile
collection name renders as text and runs nothing.
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402

N = 80
XSS = '<img src=x onerror="window.__pwned=1">'


def start_sim(port=0, latency=40):
    p = subprocess.Popen([SIM, "--port", str(port), "--hit-ratio", "1", "--latency-ms", str(latency),
                          "--threads", "4"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)", p.stdout.readline().decode())
    if not m:
        raise RuntimeError("rstsim did not start")
    return p, int(m.group(1))


def main():
    global SIM
    ui = UI(sys.argv)
    SIM = ui.rstsim
    T = ui.T
    sim = None
    try:
        # A slower provider of our own, so that a run lasts a few seconds.
        sim, port = start_sim()
        ui.srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=ui-test-key",
                   "base_url=http://127.0.0.1:%d/v1" % port)
        ips = os.path.join(ui.work, "ips.txt")
        with open(ips, "w") as f:
            f.write("".join("10.60.%d.%d\n" % (i // 250, i % 250 + 1) for i in range(N)))
        ui.srv.cli("indicator", "import", ips, "--source", "Feed W")
        st, b, _ = ui.call("POST", "/api/search/query",
                           {"name": XSS, "criteria": {"tag": "nothing-has-this"}}, "ana")
        T.check("set-up: a collection with a hostile name", st == 201, (st, b))

        ui.login("ana")
        # ---- a collection from the library's filters ----
        ui.go("/library?type=IP%20Address&source=Feed%20W")
        ui.wait_text("#library-status", "of %d" % N)
        ui.click("#save-collection summary")
        ui.type("#collection-name", "feed-w-ips")
        ui.click("#save-submit")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#saved-link")
        ui.wait_rendered()
        T.check("the collection's page: its name and the count of %d now" % N,
                ui.text_of("#collection-name") == "feed-w-ips" and
                ui.wait_text("#collection-count", "%d" % N), ui.main_text()[:300])
        # uicoll: the library opens the collection itself (its criteria, its name, save = PUT).
        T.check("'open in the library' opens the collection", ui.find("#open-library")
                .get_attribute("href").endswith("#/library?collection=" +
                                                ui.driver.current_url.rsplit("/", 1)[1]),
                ui.find("#open-library").get_attribute("href"))
        ui.go("/collections")
        ui.wait_text("#collections", "feed-w-ips")
        cnt = None
        end = time.monotonic() + 15
        while time.monotonic() < end:
            cnt = ui.js("var r=[...document.querySelectorAll('#collections tr')].find("
                        "t=>t.textContent.includes('feed-w-ips'));"
                        "return r && r.querySelector('.count').textContent")
            if cnt and cnt != "\u2026":
                break
            time.sleep(0.1)
        T.check("the collections list shows the count (%s)" % cnt, cnt == str(N), cnt)
        T.check("a hostile collection name is text in the list", XSS in ui.text_of("#collections")
                and ui.js("return typeof window.__pwned") == "undefined")
        ui.screenshot("collections")

        # ---- a workflow over it ----
        st, b, _ = ui.call("GET", "/api/search/query")
        cid = [c["id"] for c in b["data"] if c["name"] == "feed-w-ips"][0]
        ui.go("/collections/%d" % cid)
        ui.click("#new-workflow")
        ui.wait_rendered()
        ui.type("#wf-name", "enrich-w")
        T.check("the collection is chosen already",
                ui.js("return document.getElementById('wf-collection').value") == "feed-w-ips")
        ui.click("#wf-act-rst-ioc-lookup-action")
        T.check("the action's settings appear as a form (from its config fields)",
                ui.exists("#wf-settings fieldset"), ui.text_of("#wf-settings"))
        ui.js("var s=document.getElementById('wf-schedule-kind'); s.value='daily';"
              "s.dispatchEvent(new Event('change'))")
        ui.type("#wf-at", "03:15")
        ui.screenshot("workflow-form")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#workflow-submit")
        ui.wait_rendered()
        T.check("the workflow's page after create", ui.text_of("#workflow-name") == "enrich-w",
                ui.main_text()[:300])
        T.check("its schedule and next run", "03:15" in ui.text_of("#workflow-facts"),
                ui.text_of("#workflow-facts"))
        st, b, _ = ui.call("GET", "/api/workflows")
        wf = [w for w in b["data"] if w["name"] == "enrich-w"]
        T.check("the API has the workflow as the form made it", wf and
                wf[0]["collection"] == "feed-w-ips" and wf[0]["actions"] ==
                ["rst-ioc-lookup-action"] and wf[0]["schedule"] == "daily 03:15", b)
        wid = wf[0]["id"]

        # ---- run now: live progress ----
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#run-now")
        ui.wait_rendered()
        seen = []
        end = time.monotonic() + 60
        while time.monotonic() < end:
            try:
                v = ui.js("var p=document.getElementById('run-progress');"
                          "return p ? [p.value, p.max, document.getElementById('run-state')"
                          ".textContent, document.getElementById('run-live').textContent] : null")
            except Exception:
                v = None
            if v:
                seen.append(v)
                if v[2] == "done":
                    break
            time.sleep(0.1)
        mid = sorted({s[0] for s in seen if s[2] == "running" and 0 < s[0] < N})
        T.check("live progress: the bar moved while running (%d distinct values)" % len(mid),
                len(mid) >= 3, seen[:3] + seen[-3:])
        T.check("the stream was live (server-sent events), not polled",
                any(s[3] == "live" for s in seen), seen[:3])
        run_id = int(ui.driver.current_url.rsplit("/", 1)[1])
        T.check("the run ends done with the bar full", seen and seen[-1][2] == "done" and
                seen[-1][0] == N, (seen[-3:], ui.call("GET", "/api/runs/%d" % run_id)[1]))
        ui.wait_text("#run-numbers", "%d enriched" % N)
        ui.screenshot("run-done")
        run_id = int(ui.driver.current_url.rsplit("/", 1)[1])

        # ---- the workflow's activity ----
        ui.go("/workflows/%d" % wid)
        act = ui.text_of("#activity")
        st, b, _ = ui.call("GET", "/api/runs/%d" % run_id)
        T.check("the activity shows the run with its counts as the API has them",
                ("#%d" % run_id) in act and str(b["data"]["enriched"]) in act and "done" in act,
                act)
        ui.screenshot("workflow-activity")
        ui.click("#toggle-enabled")
        ui.wait_text("#workflow-enabled", "no")
        st, b, _ = ui.call("GET", "/api/workflows/%d" % wid)
        T.check("Disable: the API says disabled, the page says so", b["data"]["enabled"] is False)
        ui.js("document.querySelector('#workflow-edit').open = true")
        ui.js("var s=document.getElementById('wf-schedule-kind'); s.value='every';"
              "s.dispatchEvent(new Event('change'))")
        ui.js("document.getElementById('wf-every').value='6h'")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#workflow-submit")
        ui.wait_rendered()
        st, b, _ = ui.call("GET", "/api/workflows/%d" % wid)
        T.check("Edit: the schedule changed to every 6h, the rest kept",
                b["data"]["schedule"] == "every 6h" and b["data"]["collection"] == "feed-w-ips"
                and b["data"]["actions"] == ["rst-ioc-lookup-action"], b["data"])

        # ---- deleting the collection: refused while the workflow uses it ----
        ui.go("/collections/%d" % cid)
        ui.click("#delete-collection")
        err = ui.wait_text("#delete-result", "enrich-w")
        T.check("delete refused: the API's 409 naming the workflow, as text",
                "Deleting the data collection" in err and "enrich-w" in err, err)

        # ---- edit a collection's criteria, delete one no workflow uses ----
        st, b, _ = ui.call("GET", "/api/search/query")
        xid = [c["id"] for c in b["data"] if c["name"] == XSS][0]
        ui.go("/collections/%d" % xid)
        T.check("the hostile name is the page's text", ui.text_of("#collection-name") == XSS)
        ui.js("document.querySelector('details:has(#edit-form)').open = true")
        ui.type("#criteria-text", '{"source": "Feed W"}')
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#edit-submit")
        ui.wait_rendered()
        ui.wait_text("#collection-count", str(N))
        st, b, _ = ui.call("GET", "/api/search/query")
        ed = [c for c in b["data"] if c["name"] == XSS]
        T.check("edited: the same name with the new criteria (%d indicators now)" % N,
                len(ed) == 1 and ed[0].get("api_query", {}).get("criteria",
                                                                ed[0].get("api_query")) ==
                {"source": "Feed W"}, ed)
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#delete-collection")
        ui.wait_rendered()
        st, b, _ = ui.call("GET", "/api/search/query")
        T.check("a collection no workflow uses is deleted, back to the list",
                not any(c["name"] == XSS for c in b["data"]) and ui.exists("#collections"), b)

        # ---- failures grouped, retry failed ----
        sim.terminate()
        sim.wait()
        sim = None
        st, b, _ = ui.call("POST", "/api/actions/rst-ioc-lookup-action/runs",
                           {"values": ["10.60.0.1", "10.60.0.2", "10.60.0.3"]}, "ana")
        rid = b["data"]["id"]
        end = time.monotonic() + 60
        while time.monotonic() < end and ui.call("GET", "/api/runs/%d" % rid)[1]["data"]["state"] \
                == "running":
            time.sleep(0.2)
        ui.go("/runs/%d" % rid)
        ui.wait_for("#failures-%d" % rid)
        txt = ui.text_of("#failures-%d" % rid)
        T.check("the failures grouped by reason, with the failed values",
                "Grouped by reason" in txt and "10.60.0.2" in txt, txt)
        sim, port = start_sim(port, latency=0)
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#retry-%d" % rid)
        ui.wait_rendered()
        ui.wait_text("#run-state", "done", timeout=60)
        new_id = int(ui.driver.current_url.rsplit("/", 1)[1])
        st, b, _ = ui.call("GET", "/api/runs/%d" % new_id)
        T.check("retry failed: a new run over the 3 failed values, none failing now",
                new_id != rid and b["data"]["total"] == 3 and b["data"]["failed"] == 0 and
                b["data"].get("retry_of") == rid, b)
        T.check("no script ran anywhere (window.__pwned undefined)",
                ui.js("return typeof window.__pwned") == "undefined")
    except Exception as e:  # noqa: BLE001
        T.check("the flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-workflows")
        except Exception:  # noqa: BLE001
            pass
    finally:
        if sim:
            sim.terminate()
            sim.wait()
    ui.done()


if __name__ == "__main__":
    main()

"""collections_test.py (ui.collections): data collections edited in place, with counts, in
headless Chromium.

The collections list shows each collection's count from the API's own counts (GET
/api/search/query?with=count: no per-collection query from the browser) and they match the API;
a collection a workflow runs over is edited on its page (new criteria): its id stays, the
workflow still names it and its next run (run now, in the browser) walks the new criteria;
renaming it is refused with the API's 409 naming the workflow, as text; "open in the library"
(#/library?collection=ID) applies its criteria and shows its name; changed filters saved from
the library update the same collection (PUT) and the list's count follows; a hostile name is
text everywhere; a read-only user gets no save button.
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402

N_A, N_B = 30, 12
XSS = '<img src=x onerror="window.__pwned=1">'


def main():
    ui = UI(sys.argv)
    T = ui.T
    try:
        for name, net, n, src in (("a", "10.80.0.", N_A, "Feed A"), ("b", "10.81.0.", N_B, "Feed B")):
            path = os.path.join(ui.work, name + ".txt")
            with open(path, "w") as f:
                f.write("".join("%s%d\n" % (net, i + 1) for i in range(n)))
            ui.srv.cli("indicator", "import", path, "--source", src)
        st, b, _ = ui.call("POST", "/api/search/query",
                           {"name": "coll-a", "criteria": {"source": "Feed A"}}, "ana")
        T.check("set-up: the collection coll-a", st == 201, (st, b))
        cid = b["data"]["id"]
        st, b, _ = ui.call("POST", "/api/search/query",
                           {"name": XSS, "criteria": {"source": "Feed B"}}, "ana")
        T.check("set-up: a collection with a hostile name", st == 201, (st, b))
        xid = b["data"]["id"]
        st, b, _ = ui.call("POST", "/api/workflows",
                           {"name": "wf-c", "collection": "coll-a",
                            "actions": ["rst-ioc-lookup-action"], "schedule": "every 6h",
                            "settings": {}}, "ana")
        T.check("set-up: the workflow wf-c over coll-a", st == 201, (st, b))
        wid = b["data"]["id"]

        ui.login("ana")

        # ---- the list's counts are the API's ----
        def list_counts():
            ui.go("/collections")
            ui.wait_text("#collections", "coll-a")
            return {el.get_attribute("data-id"): el.text for el in ui.finds("#collections .count")}

        # Requests the list page starts (a late answer of the page before started earlier).
        t0 = ui.js("performance.clearResourceTimings(); return performance.now()")
        shown = list_counts()
        st, b, _ = ui.call("GET", "/api/search/query?with=count&limit=1000", "ro")
        api_counts = {str(c["id"]): "{:,}".format(c["count"]) for c in b["data"]}
        T.check("the list shows every collection's count as the API has it (%s)" % shown,
                shown == api_counts and shown.get(str(cid)) == str(N_A), (shown, api_counts))
        # No per-collection query from the browser: the page made no POST /api/indicators/query.
        posts = ui.js("return performance.getEntriesByType('resource').filter("
                      "e => e.startTime >= arguments[0] && e.name.includes('/api/indicators/query'))"
                      ".length", t0)
        T.check("the list asked no per-collection query (%s)" % posts, posts == 0, posts)
        T.check("a hostile name is text in the list", XSS in ui.text_of("#collections") and
                ui.js("return typeof window.__pwned") == "undefined")
        ui.screenshot("collections-counts")

        # ---- edit in place a collection a workflow uses ----
        ui.go("/collections/%d" % cid)
        ui.js("document.querySelector('details:has(#edit-form)').open = true")
        ui.type("#criteria-text", '{"source": "Feed B"}')
        ui.screenshot("collection-edit")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#edit-submit")
        ui.wait_rendered()
        ui.wait_text("#collection-count", str(N_B))
        T.check("after the edit the page is the same id",
                ui.driver.current_url.endswith("#/collections/%d" % cid), ui.driver.current_url)
        st, b, _ = ui.call("GET", "/api/search/query/%d" % cid, "ro")
        T.check("the API: the same id and name with the new criteria",
                st == 200 and b["data"]["name"] == "coll-a" and
                b["data"]["api_query"]["criteria"] == {"source": "Feed B"}, b)
        st, b, _ = ui.call("GET", "/api/workflows/%d" % wid, "ro")
        T.check("the workflow still runs over coll-a", b["data"]["collection"] == "coll-a", b)
        T.check("the page lists the workflow using it", "wf-c" in ui.text_of("#collection-workflows"))

        # Renaming a workflow's collection: refused, the API's message as text.
        ui.js("document.querySelector('details:has(#edit-form)').open = true")
        ui.type("#edit-name", "coll-renamed")
        ui.click("#edit-submit")
        err = ui.wait_text("#edit-result", "wf-c")
        T.check("renaming it is refused naming the workflow (as text)",
                "Saving the data collection" in err and "wf-c" in err, err)
        st, b, _ = ui.call("GET", "/api/search/query/%d" % cid, "ro")
        T.check("the refused rename changed nothing", b["data"]["name"] == "coll-a", b)

        # The workflow's next run walks the new criteria.
        ui.go("/workflows/%d" % wid)
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#run-now")
        ui.wait_rendered()
        ui.wait_text("#run-state", "done", timeout=60)
        rid = int(ui.driver.current_url.rsplit("/", 1)[1])
        st, b, _ = ui.call("GET", "/api/runs/%d" % rid, "ro")
        T.check("the workflow's next run walked the new criteria (%s of %d)" %
                (b["data"].get("total"), N_B), b["data"].get("total") == N_B and
                "coll-a" in json.dumps(b["data"]), b["data"])

        # ---- the library opens the collection; save updates it ----
        ui.go("/collections/%d" % cid)
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#open-library")
        ui.wait_rendered()
        T.check("the library's URL names the collection",
                ui.driver.current_url.endswith("#/library?collection=%d" % cid),
                ui.driver.current_url)
        T.check("the library shows the collection's name",
                ui.text_of("#library-collection-name") == "coll-a", ui.main_text()[:300])
        ui.wait_text("#library-status", "of %d" % N_B)
        T.check("its criteria are applied (the source filter holds Feed B)",
                ui.js("return document.getElementById('f-source').value") == "Feed B")
        ui.js("document.querySelector('#library-form details').open = true")
        ui.type("#f-source", "Feed A")
        ui.click("#apply-filters")
        ui.wait_rendered()
        ui.wait_text("#library-status", "of %d" % N_A)
        T.check("changed filters keep the collection in the URL",
                "collection=%d" % cid in ui.driver.current_url, ui.driver.current_url)
        T.check("the page says the filters are not saved in it yet",
                "not saved" in ui.text_of("#library-collection"), ui.text_of("#library-collection"))
        ui.click("#update-collection")
        ui.wait_text("#update-result", "Saved to the data collection")
        T.check("after save it no longer says so",
                "not saved" not in ui.text_of("#library-collection"), ui.text_of("#library-collection"))
        ui.screenshot("library-collection")
        st, b, _ = ui.call("GET", "/api/search/query/%d" % cid, "ro")
        crit = b["data"]["api_query"]["criteria"]
        T.check("save updated the same collection with the library's filters",
                st == 200 and b["data"]["id"] == cid and "Feed A" in json.dumps(crit) and
                "Feed B" not in json.dumps(crit), b)
        st, b, _ = ui.call("GET", "/api/search/query", "ro")
        T.check("no new collection was made", len(b["data"]) == 2, b)
        shown = list_counts()
        T.check("the list's count follows (%s)" % shown.get(str(cid)),
                shown.get(str(cid)) == str(N_A), shown)

        # ---- hostile name in the library; read-only ----
        ui.go("/library?collection=%d" % xid)
        T.check("a hostile name is the library's text",
                ui.text_of("#library-collection-name") == XSS and
                ui.js("return typeof window.__pwned") == "undefined")
        ui.logout()
        ui.login("ro")
        ui.go("/library?collection=%d" % cid)
        ui.wait_text("#library-status", "of %d" % N_A)
        T.check("read-only: the collection opens, with no save button",
                not ui.exists("#update-collection") and not ui.exists("#save-form"))
        ui.go("/collections/%d" % cid)
        ui.wait_text("#collection-count", str(N_A))
        T.check("read-only: the collection's page has no edit form and no delete",
                not ui.exists("#edit-form") and not ui.exists("#delete-collection"))
        st, b, _ = ui.call("PUT", "/api/search/query/%d" % cid, {"name": "ro-was-here"}, "ro")
        T.check("read-only: the API refuses the edit anyway (403)", st == 403, (st, b))
        T.check("no script ran anywhere", ui.js("return typeof window.__pwned") == "undefined")
    except Exception as e:  # noqa: BLE001
        T.check("the flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-collections")
        except Exception:  # noqa: BLE001
            pass
    ui.done()


if __name__ == "__main__":
    main()

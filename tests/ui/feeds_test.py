"""feeds_test.py (ui.feeds): feeds in headless Chromium.

An admin adds a feed from a preset (the presets from GET /api/feeds/presets, rstsim's TAXII
server as its URL), polls it now: the list shows its last poll, what it brought, its checkpoint
and state ok, as the API has them. A feed whose collection text is hostile markup fails to poll:
its error renders as text and runs nothing. An analyst may poll but not add; a read-only user
does neither (and the API refuses).
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402

XSS = '<img src=x onerror="window.__pwned=1">'


def feed(ui, name):
    st, b, _ = ui.call("GET", "/api/feeds")
    return ([f for f in b["data"] if f["name"] == name] or [None])[0]


def reload(ui, route):
    """Renders route again (going to the same hash fires no hashchange)."""
    ui.go("/runs")
    ui.go(route)


def main():
    ui = UI(sys.argv)
    T = ui.T
    try:
        taxii = ui.sim_url[:-len("/v1")] + "/taxii2/"
        ui.login("adm")
        ui.go("/feeds")
        T.check("no feed yet", "No feed yet" in ui.text_of("#feeds"), ui.text_of("#feeds"))
        opts = ui.js("return [...document.querySelectorAll('#feed-preset option')].map(o=>o.value)")
        T.check("the presets come from the API (%s)" % ", ".join(opts), "rst-high" in opts, opts)
        ui.js("var s=document.getElementById('feed-preset'); s.value='rst-high';"
              "s.dispatchEvent(new Event('change'))")
        T.check("the preset's collection and source are described",
                "Collection" in ui.text_of("#preset-info"), ui.text_of("#preset-info"))
        ui.type("#feed-name", "rst-high-ui")
        ui.type("#feed-url", taxii)
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#feed-submit")
        ui.wait_rendered()
        T.check("the feed is listed, never polled", "rst-high-ui" in ui.text_of("#feeds") and
                "never" in ui.text_of("#feeds"), ui.text_of("#feeds"))
        f = feed(ui, "rst-high-ui")
        T.check("the API has it with the preset's collection and the URL given",
                f and f["discovery"] == taxii and f["collection"], f)

        # ---- poll now ----
        ui.click("#feeds button[data-feed='rst-high-ui']")
        ui.wait_text("#feed-action-result", "Polling rst-high-ui")
        end = time.monotonic() + 60
        while time.monotonic() < end and not (feed(ui, "rst-high-ui") or {}).get("last_poll_at"):
            time.sleep(0.3)
        f = feed(ui, "rst-high-ui")
        T.check("the poll ran (API: state %s)" % (f or {}).get("state"), f and f["state"] == "ok", f)
        reload(ui, "/feeds")
        row = ui.js("var r=[...document.querySelectorAll('#feeds tbody tr')].find("
                    "t=>t.textContent.includes('rst-high-ui')); return r && r.textContent")
        T.check("the list shows the last poll, its counts, checkpoint and state ok",
                row and "ok" in row and "never" not in row and
                (f["checkpoint"] or "") in row, row)
        ui.screenshot("feeds")

        # ---- hostile text ----
        st, b, _ = ui.call("POST", "/api/feeds", {"name": "evil", "url": taxii,
                                                  "collection": XSS, "source": "Evil"})
        T.check("set-up: a feed whose collection is markup", st == 201, (st, b))
        ui.call("POST", "/api/feeds/evil/poll", None, "ana")
        end = time.monotonic() + 30
        while time.monotonic() < end and not (feed(ui, "evil") or {}).get("last_poll_at"):
            time.sleep(0.3)
        reload(ui, "/feeds")
        txt = ui.text_of("#feeds")
        T.check("the hostile collection renders as text, no script ran",
                XSS in txt and ui.js("return typeof window.__pwned") == "undefined"
                and not ui.js("return document.querySelector('#feeds img') !== null"), txt[-300:])
        ev = feed(ui, "evil")
        T.check("its poll error is shown as text", ev and ev.get("last_error") and
                ev["last_error"][:40] in txt, (ev, txt[-300:]))

        # ---- roles ----
        ui.logout()
        ui.login("ana")
        ui.go("/feeds")
        T.check("analyst: poll buttons, no add form",
                ui.exists("#feeds button.poll") and not ui.exists("#feed-form"))
        ui.logout()
        ui.login("ro")
        ui.go("/feeds")
        T.check("read-only: the list, no poll button", "rst-high-ui" in ui.text_of("#feeds") and
                not ui.exists("#feeds button.poll"))
        st, b, _ = ui.call("POST", "/api/feeds/rst-high-ui/poll", None, "ro")
        T.check("... and the API refuses a read-only poll (403)", st == 403, (st, b))
    except Exception as e:  # noqa: BLE001
        T.check("the flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-feeds")
        except Exception:  # noqa: BLE001
            pass
    ui.done()


if __name__ == "__main__":
    main()

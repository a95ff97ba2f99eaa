"""library_test.py (ui.library): the threat library screen in headless Chromium.

Keyboard: tab to the search box, type a defanged IP, Enter: the type is detected, the value
refanged and the one indicator found; open it. Filters (type, status, source, score range, tag,
attribute) in the URL and bookmarkable; sorting by a column; keyset paging forward and back;
"save as data collection" matches what the API answers for the same criteria; hostile values
(<img onerror>, <script>) render as text and run nothing.
"""

import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI, Keys  # noqa: E402

XSS_VALUE = '<img src=x onerror="window.__pwned=1">'
XSS_ATTR = '<script>window.__pwned=2</script><img src=x onerror="window.__pwned=3">'


def rows(ui):
    return [r.text for r in ui.finds("#results tbody tr td:first-child")]


def main():
    ui = UI(sys.argv)
    T = ui.T
    try:
        # ---- the library: 60 IPs (Feed A), 5 domains (Feed B), one hostile string ----
        ips = os.path.join(ui.work, "ips.txt")
        with open(ips, "w") as f:
            f.write("".join("10.20.%d.%d\n" % (i // 250, i % 250 + 1) for i in range(59)))
            f.write("45.83.122.166\n")
        ui.srv.cli("indicator", "import", ips, "--source", "Feed A")
        doms = os.path.join(ui.work, "doms.txt")
        with open(doms, "w") as f:
            f.write("".join("host%d.evil-example.com\n" % i for i in range(5)))
        ui.srv.cli("indicator", "import", doms, "--source", "Feed B")
        st, b, _ = ui.call("POST", "/api/indicators", {
            "value": XSS_VALUE, "type": "String", "status": "Review",
            "sources": [{"name": "Feed B", "tlp": "AMBER"}],
            "attributes": [{"name": "Note", "value": XSS_ATTR}], "tags": ["xss-probe"]}, "ana")
        T.check("set-up: a hostile String indicator", st == 201, (st, b))
        st, b, _ = ui.call("GET", "/api/indicators?value=45.83.122.166")
        target = b["data"][0]["id"]
        ui.call("PUT", "/api/indicator/%d/scores" % target, {"manual_score": 9}, "ana")
        ui.call("POST", "/api/indicators/%d/tags" % target, {"name": "c2"}, "ana")

        ui.login("ana")
        T.check("the library is the first screen", "Threat library" in ui.text_of("main h1"))
        T.check("the first page lists indicators, then their count",
                "of 66" in ui.wait_text("#library-status", "of 66"), ui.text_of("#library-status"))
        ui.screenshot("library")

        # ---- keyboard: tab to the search box, type a defanged IP, Enter ----
        ui.js("document.activeElement && document.activeElement.blur(); window.scrollTo(0,0)")
        body = ui.find("body")
        body.send_keys(Keys.TAB)
        tabs = 1
        while ui.js("return document.activeElement.id") != "search" and tabs < 30:
            ui.driver.switch_to.active_element.send_keys(Keys.TAB)
            tabs += 1
        T.check("the search box is reachable with Tab (%d presses)" % tabs,
                ui.js("return document.activeElement.id") == "search")
        T.check("the search box is labelled", ui.exists("label[for=search]"))
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.driver.switch_to.active_element.send_keys("45.83.122[.]166", Keys.ENTER)
        ui.wait_rendered()
        T.check("Enter submits: the URL holds the search (bookmarkable)",
                "q=45.83.122%5B.%5D166" in ui.driver.current_url, ui.driver.current_url)
        det = ui.text_of("#detected")
        T.check("the type is detected and the value refanged",
                "IP Address" in det and "45.83.122.166" in det and "refanged" in det, det)
        T.check("exactly that indicator is found", rows(ui) == ["45.83.122.166"], rows(ui))
        ui.screenshot("library-search")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#results tbody a")
        ui.wait_rendered()
        T.check("its link opens the object page (#/indicators/%d)" % target,
                ui.driver.current_url.endswith("#/indicators/%d" % target), ui.driver.current_url)
        T.check("the object page shows the value", ui.text_of("#object-value") == "45.83.122.166")
        ui.driver.back()
        ui.wait_for("#detected")
        T.check("Back returns to the search", rows(ui) == ["45.83.122.166"], rows(ui))

        # A keyword (no indicator type): values containing it.
        ui.type("#search", "evil-example", enter=True)
        ui.wait_text("#detected", "containing")
        ui.wait_rendered()
        T.check("a keyword finds the values containing it (5 domains)",
                len(rows(ui)) == 5 and all("evil-example" in r for r in rows(ui)), rows(ui))

        # ---- filters, in the URL, bookmarkable ----
        ui.go("/library?type=IP%20Address&source=Feed%20A&score_gte=5")
        T.check("a bookmarked filter URL: the selects show it",
                ui.find("#f-type").get_attribute("value") == "IP Address" and
                ui.find("#f-source").get_attribute("value") == "Feed A" and
                ui.find("#f-score_gte").get_attribute("value") == "5")
        T.check("type IP Address, source Feed A, score >= 5: only the scored IP",
                rows(ui) == ["45.83.122.166"], rows(ui))
        ui.go("/library")
        ui.click("#library-form summary")
        from selenium.webdriver.support.ui import Select
        Select(ui.find("#f-type")).select_by_visible_text("FQDN")
        Select(ui.find("#f-status")).select_by_visible_text("Active")
        T.check("the source field suggests the library's sources",
                ui.js("return [...document.querySelectorAll('#source-names option')]"
                      ".map(o => o.value).join(',')") in ("Feed A,Feed B", "Feed B,Feed A"),
                ui.js("return document.getElementById('source-names').children.length"))
        ui.type("#f-source", "Feed B")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#apply-filters")
        ui.wait_rendered()
        url = urllib.parse.unquote_plus(ui.driver.current_url)
        T.check("filters go into the URL", "type=FQDN" in url and "status=Active" in url and
                "source=Feed B" in url, url)
        T.check("FQDN + Active + Feed B: the 5 domains", len(rows(ui)) == 5 and
                all(r.endswith(".evil-example.com") for r in rows(ui)), rows(ui))
        ui.screenshot("library-filters")
        ui.go("/library?tag=c2")
        T.check("tag filter", rows(ui) == ["45.83.122.166"], rows(ui))
        ui.go("/library?attribute=Note")
        T.check("attribute filter: the hostile string, shown as text",
                rows(ui) == [XSS_VALUE], rows(ui))
        ui.go("/library?updated_since=now-1%20days&type=FQDN")
        T.check("updated since filter", len(rows(ui)) == 5, rows(ui))
        ui.go("/library?object=malware")
        T.check("object type filter: another collection's list", "Malware" in
                ui.text_of("#library-status") or "malware" in ui.text_of("#library-status"),
                ui.text_of("#library-status"))

        # ---- sorting ----
        ui.go("/library")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#results th button.sort")  # Value
        ui.wait_rendered()
        T.check("sorting by a column: in the URL", "sort=value" in ui.driver.current_url,
                ui.driver.current_url)
        vals = rows(ui)
        T.check("sorted by value ascending", vals == sorted(vals) and len(vals) == 50, vals[:5])
        T.check("the sorted column says so (aria-sort)",
                ui.find("#results th[aria-sort]").get_attribute("aria-sort") == "ascending")
        ui.go("/library?sort=score&dir=desc")
        T.check("sorted by score descending: the scored IP first",
                rows(ui)[0] == "45.83.122.166", rows(ui)[:3])

        # ---- keyset paging ----
        ui.go("/library?type=IP%20Address&limit=25")
        p1 = rows(ui)
        T.check("page 1: 25 rows of 60", len(p1) == 25 and "1\u201325 of 60" in
                ui.wait_text("#library-status", "of 60"), ui.text_of("#library-status"))
        ui.click("#page-next")
        ui.wait_text("#library-status", "26\u201350")
        p2 = rows(ui)
        ui.click("#page-next")
        ui.wait_text("#library-status", "51\u201360")
        p3 = rows(ui)
        T.check("keyset pages: 25 + 25 + 10, no repeat, all 60",
                len(p2) == 25 and len(p3) == 10 and len(set(p1 + p2 + p3)) == 60,
                (len(p2), len(p3)))
        T.check("the last page disables Next", not ui.find("#page-next").is_enabled())
        ui.click("#page-prev")
        ui.wait_text("#library-status", "26\u201350")
        T.check("Previous shows page 2 again", rows(ui) == p2)
        ui.click("#page-prev")
        ui.wait_text("#library-status", "1\u201325")
        T.check("... and page 1", rows(ui) == p1)

        # ---- save as data collection ----
        ui.go("/library?type=IP%20Address&source=Feed%20A")
        ui.click("#save-collection summary")
        ui.type("#collection-name", "ui feed A ips")
        ui.click("#save-submit")
        ui.wait_for("#saved-link")
        T.check("saved: a link to the collection", ui.text_of("#saved-link") == "ui feed A ips")
        st, b, _ = ui.call("GET", "/api/search/query")
        saved = [c for c in b["data"] if c["name"] == "ui feed A ips"]
        T.check("the API lists the saved collection", len(saved) == 1, b)
        if saved:
            st, b, _ = ui.call("GET", "/api/indicators/query/hash/%s?limit=1" % saved[0]["hash"])
            T.check("the collection holds what the screen showed (60)", b.get("total") == 60, b)
        ui.screenshot("library-saved")
        ui.type("#collection-name", "ui feed A ips")
        ui.click("#save-submit")
        err = ui.wait_text("#save-result", "Saving")
        T.check("saving the same name again: the 409 shown as text", "409" in err or
                "exists" in err, err)

        # ---- hostile values render as text ----
        ui.go("/library?tag=xss-probe")
        T.check("the hostile value is shown literally", rows(ui) == [XSS_VALUE], rows(ui))
        T.check("no <img> element was made from it", not ui.exists("#results img"))
        T.check("no script ran (window.__pwned undefined)",
                ui.js("return typeof window.__pwned") == "undefined")

        # ---- a phone's width ----
        ui.viewport(390, 800)
        ui.go("/library?type=IP%20Address&limit=25")
        w = ui.js("return document.documentElement.scrollWidth")
        T.check("at 390px the library needs no horizontal scrolling", w <= 390, w)
        T.check("at 390px the rows are still there", len(rows(ui)) == 25, len(rows(ui)))
        ui.screenshot("library-phone")
        ui.viewport(1280, 800)

        # ---- read-only: no save form ----
        ui.logout()
        ui.login("ro")
        T.check("read-only: no 'save as data collection'", not ui.exists("#save-form"))
        st, b, _ = ui.call("POST", "/api/search/query", {"name": "ro try", "criteria": {}}, "ro")
        T.check("read-only: the API refuses saving (403)", st == 403, (st, b))
    except Exception as e:
        T.check("the browser flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-library")
        except Exception:
            pass
    ui.done()


if __name__ == "__main__":
    main()

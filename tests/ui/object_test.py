"""object_test.py (ui.object): an indicator's page in headless Chromium.

log in -> search an IP -> open it -> run RST IoC Lookup (rstsim behind the plugin) -> the
result and the proposed changes -> Apply -> the attributes, the score and the related objects
appear, as the API has them. Edits (status, manual score, tags, attributes) through the page;
the score's explanation; another object type's page through a related link; hostile values
(an indicator value and an attribute holding <img onerror> and <script>) shown as text with no
script run; a read-only user sees no edit control and no Apply, and the API refuses anyway.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402
from selenium.webdriver.support.ui import Select  # noqa: E402

XSS_VALUE = '<img src=x onerror="window.__pwned=1">'
XSS_ATTR = '<script>window.__pwned=2</script>'


def attr_pairs(ui):
    out = []
    for tr in ui.finds("#attributes tbody tr"):
        tds = tr.find_elements("css selector", "td")
        if len(tds) >= 2:
            out.append((tds[0].text, tds[1].text))
    return out


def main():
    ui = UI(sys.argv)
    T = ui.T
    try:
        ui.srv.cli("plugin", "configure", "rst-ioc-lookup", "update_score=true")
        ips = os.path.join(ui.work, "ips.txt")
        with open(ips, "w") as f:
            f.write("1.2.3.4\n10.1.1.1\n")
        ui.srv.cli("indicator", "import", ips, "--source", "Feed A")
        st, b, _ = ui.call("GET", "/api/indicators?value=1.2.3.4")
        iid = b["data"][0]["id"]
        st, b, _ = ui.call("POST", "/api/indicators", {
            "value": XSS_VALUE, "type": "String",
            "sources": [{"name": "Hostile feed", "tlp": "RED"}],
            "attributes": [{"name": "Note", "value": XSS_ATTR}]}, "ana")
        xid = b["data"][0]["id"]

        # ---- log in -> search the IP -> open it ----
        ui.login("ana")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.type("#search", "1.2.3.4", enter=True)
        ui.wait_rendered()
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#results tbody a")
        ui.wait_rendered()
        T.check("the object page has its own URL", ui.driver.current_url.endswith(
            "#/indicators/%d" % iid), ui.driver.current_url)
        T.check("value, type, status shown", ui.text_of("#object-value") == "1.2.3.4" and
                "IP Address" in ui.text_of("#facts") and "Active" in ui.text_of("#facts"),
                ui.text_of("#facts"))
        T.check("sources with TLP", "Feed A" in ui.text_of("#sources"), ui.text_of("#sources"))
        T.check("no attribute yet", "No attribute" in ui.text_of("#attributes"))
        T.check("the score is explained (source term)", "Feed A" in ui.text_of("#score"),
                ui.text_of("#score"))
        ui.screenshot("object")

        # ---- Operations -> RST IoC Lookup -> result, proposed changes -> Apply ----
        ops = [b.text for b in ui.finds("#op-menu .op-run")]
        T.check("the Operations menu lists RST IoC Lookup", "Query RST IoC Lookup" in ops, ops)
        ui.click("#op-menu .op-run[data-plugin='rst-ioc-lookup']")
        ui.wait_for("#op-changes", timeout=30)
        T.check("the run's result is shown", "RST IoC Lookup" in ui.text_of("#op-show") or
                "found" in ui.text_of("#op-show"), ui.text_of("#op-show")[:300])
        changes = ui.text_of("#op-changes")
        T.check("the proposed changes: attributes and links",
                "RST Score" in changes and "Agenttesla" in changes, changes[:300])
        st, b, _ = ui.call("GET", "/api/indicators/%d?with=attributes" % iid)
        T.check("nothing is written before Apply", b["data"]["attributes"] == [], b["data"])
        ui.screenshot("object-operation")
        ui.click("#op-apply")
        ui.wait_text("#apply-result", "Applied", timeout=30)
        ui.wait_text("#attributes", "RST Score")
        st, b, _ = ui.call("GET", "/api/indicators/%d?with=attributes,score" % iid)
        api_attrs = sorted((a["name"], a["value"]) for a in b["data"]["attributes"])
        page_attrs = sorted(attr_pairs(ui))
        T.check("after Apply the page shows exactly the API's attributes (%d)" % len(api_attrs),
                api_attrs and page_attrs == api_attrs, (page_attrs[:5], api_attrs[:5]))
        T.check("the attributes are grouped by their source (RST IoC Lookup)",
                "RST IoC Lookup" in [h.text for h in ui.finds("#attributes h3")])
        api_score = b["data"]["score"]["score"]
        page_score = ui.text_of("#score-value")
        T.check("the score appears, as the API has it (%s)" % api_score,
                float(page_score) == float(api_score) and float(api_score) > 0,
                (page_score, api_score))
        related = [a.text for a in ui.finds("#related a.related-link")]
        T.check("related objects appear as links (malware, attack patterns)",
                "Agenttesla" in related and "T1486" in related, related)
        ui.js("window.scrollTo(0, 0)")
        ui.screenshot("object-applied")
        T.check("Apply is gone once applied", not ui.exists("#op-apply"))

        # ---- a related object's page ----
        link = [a for a in ui.finds("#related a.related-link") if a.text == "Agenttesla"][0]
        href = link.get_attribute("href")
        ui.js("document.getElementById('main').dataset.state='old'")
        link.click()
        ui.wait_rendered()
        T.check("a related link opens #/objects/malware/{id}", "#/objects/malware/" in href and
                ui.driver.current_url == href, (href, ui.driver.current_url))
        T.check("the malware page shows it and links back to the indicator",
                ui.text_of("#object-value") == "Agenttesla" and
                "1.2.3.4" in ui.text_of("#related"), ui.text_of("#related"))
        ui.driver.back()
        ui.wait_for("#object-value")
        ui.wait_rendered()

        # ---- edits ----
        ui.click("#edit-panel summary")
        Select(ui.find("#edit-status")).select_by_visible_text("Review")
        ui.click("#status-save")
        ui.wait_text("#object-notice", "status: done")
        st, b, _ = ui.call("GET", "/api/indicators/%d?with=status" % iid)
        T.check("status changed to Review (page and API)", "Review" in ui.text_of("#facts") and
                b["data"]["status"]["name"] == "Review", ui.text_of("#facts"))
        T.check("the Edit panel stays open after a write", ui.find("#edit-score").is_displayed())
        ui.type("#edit-score", "3")
        ui.click("#score-save")
        ui.wait_text("#object-notice", "manual score: done")
        T.check("a manual score of 3 shows as manual", ui.text_of("#score-value") == "3" and
                "manual" in ui.text_of("#facts") and "manual score 3" in ui.text_of("#score-why"),
                (ui.text_of("#facts"), ui.text_of("#score-why")))
        ui.type("#tag-name", "phishing")
        ui.click("#tag-add")
        ui.wait_text("#tag-list", "phishing")
        st, b, _ = ui.call("GET", "/api/indicators/%d/tags" % iid)
        T.check("a tag added (page and API)", [t["name"] for t in b["data"]] == ["phishing"], b)
        ui.click("#tag-list .tag-remove")
        ui.wait_text("#tags", "No tag")
        T.check("the tag removed", True)
        ui.type("#attr-name", "Analyst note")
        ui.type("#attr-value", XSS_ATTR)
        ui.click("#attr-add")
        ui.wait_text("#attributes", "Analyst note")
        T.check("an attribute holding <script> is added and shown literally",
                ("Analyst note", XSS_ATTR) in attr_pairs(ui), attr_pairs(ui)[:3])
        row = [tr for tr in ui.finds("#attributes tbody tr") if "Analyst note" in tr.text][0]
        row.find_element("css selector", ".attr-edit").click()
        inp = ui.wait_for(".attr-input")
        inp.clear()
        inp.send_keys("reviewed")
        inp.submit()
        ui.wait_text("#object-notice", "Changing the attribute Analyst note: done")
        T.check("an attribute's value edited", ("Analyst note", "reviewed") in attr_pairs(ui))
        row = [tr for tr in ui.finds("#attributes tbody tr") if "Analyst note" in tr.text][0]
        row.find_element("css selector", ".attr-delete").click()
        ui.wait_text("#object-notice", "Deleting the attribute Analyst note: done")
        T.check("an attribute deleted", "Analyst note" not in ui.text_of("#attributes"))
        ui.type("#edit-score", "42")
        ui.click("#score-save")
        T.check("a manual score of 42: the browser's own check stops it",
                ui.js("return document.getElementById('edit-score').validity.valid") is False)
        ui.js("document.getElementById('edit-score').removeAttribute('max')")
        ui.click("#score-save")
        err = ui.wait_text("#errors", "manual score")
        T.check("a bad manual score: the API's 400 shown as text naming the field",
                "400" in err or "manual_score" in err, err)

        # ---- a phone's width ----
        ui.viewport(390, 800)
        ui.go("/indicators/%d" % iid)
        w = ui.js("return document.documentElement.scrollWidth")
        T.check("at 390px the object page needs no horizontal scrolling", w <= 390, w)
        ui.screenshot("object-phone")
        ui.viewport(1280, 800)

        # ---- hostile values ----
        ui.go("/indicators/%d" % xid)
        T.check("an <img onerror> value is shown literally as the heading",
                ui.text_of("#object-value") == XSS_VALUE, ui.text_of("#object-value"))
        T.check("a <script> attribute is shown literally", ("Note", XSS_ATTR) in attr_pairs(ui),
                attr_pairs(ui))
        T.check("no <img> or <script> element made from them",
                not ui.exists("main img") and not ui.exists("main script"))
        T.check("no script ran (window.__pwned undefined)",
                ui.js("return typeof window.__pwned") == "undefined")
        T.check("TLP RED shown for the source", "TLP:RED" in ui.text_of("#sources"))
        ui.screenshot("object-hostile")
        ui.go("/indicators/999999", wait=False)
        err = ui.wait_text("#errors", "999999")
        T.check("an unknown id: the 404 shown as text", "no indicator" in err or "404" in err, err)

        # ---- read-only ----
        st, b, _ = ui.call("POST", "/api/plugins/rst-ioc-lookup/operations/lookup",
                           {"object_id": iid}, "ana")
        run_id = b["data"]["run_id"]
        ui.logout()
        ui.login("ro")
        ui.go("/indicators/%d" % iid)
        T.check("read-only: the page shows the object", ui.text_of("#object-value") ==
                "1.2.3.4")
        T.check("read-only: no edit controls", not ui.exists("#edit-panel") and
                not ui.exists("#tag-form") and not ui.exists("#attr-form") and
                not ui.exists(".attr-edit") and not ui.exists(".tag-remove"))
        T.check("read-only: no operation to run and no Apply",
                not ui.exists(".op-run") and not ui.exists("#op-apply") and
                ui.exists("#ops-readonly"))
        ui.screenshot("object-readonly")
        st, b, _ = ui.call("POST", "/api/plugins/rst-ioc-lookup/operations/lookup/apply",
                           {"run_id": run_id}, "ro")
        T.check("read-only: the API refuses Apply (403)", st == 403, (st, b))
        st, b, _ = ui.call("POST", "/api/plugins/rst-ioc-lookup/operations/lookup",
                           {"object_id": iid}, "ro")
        T.check("read-only: the API refuses running an operation (403)", st == 403, (st, b))
        st, b, _ = ui.call("PUT", "/api/indicators/%d" % iid, {"status": "Active"}, "ro")
        T.check("read-only: the API refuses editing (403)", st == 403, (st, b))
        st, b, _ = ui.call("POST", "/api/indicators/%d/tags" % iid, {"name": "x"}, "ro")
        T.check("read-only: the API refuses tagging (403)", st == 403, (st, b))
    except Exception as e:
        T.check("the browser flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-object")
        except Exception:
            pass
    ui.done()


if __name__ == "__main__":
    main()

"""integrations_test.py (ui.integrations): plugins and actions in headless Chromium.

The plugins with version and status and the actions; a plugin whose manifest is broken is
listed with its file:line:col error as text (its hostile label runs nothing); an admin configures
a plugin through the form built from its manifest: the password field is write-only (empty after
saving, never in the DOM nor in the API's answer, only "********"); a read-only user sees the
configuration without the form and the API refuses a change.
"""

import json
import os
import re
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402

SECRET = "noise-secret-4711-xyz"


def main():
    src = os.path.abspath(sys.argv[2])
    plugins = tempfile.mkdtemp(prefix="tq-ui-plugins-")
    shutil.rmtree(plugins)
    shutil.copytree(os.path.join(src, "plugins"), plugins)
    os.makedirs(os.path.join(plugins, "evil"))
    with open(os.path.join(plugins, "evil", "manifest.yaml"), "w") as f:
        f.write('name: evil\nversion: 1.0.0\nlabel: "<img src=x onerror=window.__pwned=1>"\n'
                "operations: [\n")
    # A folder whose name is markup: it reaches the page inside the error text.
    hostile = os.path.join(plugins, '<img src=x onerror="window.__pwned=2">')
    os.makedirs(hostile)
    with open(os.path.join(hostile, "manifest.yaml"), "w") as f:
        f.write("name: hostile\nversion: 1.0.0\nlabel: x\nno_such_key: 1\n")
    ui = UI(sys.argv, env={"TQHOST_PLUGINS": plugins})
    T = ui.T
    try:
        ui.login("adm")
        ui.go("/integrations")
        txt = ui.text_of("#plugins")
        T.check("the plugins with their versions and status",
                "RST IoC Lookup" in txt and "1.0.0" in txt and "ready" in txt and
                "needs configuration" in txt, txt)
        err = ui.text_of("#broken-plugins")
        T.check("a broken manifest is listed with its file:line:col error",
                re.search(r"evil/manifest\.yaml:\d+:\d+:", err) and "broken" in err, err)
        T.check("an error holding markup (a folder named <img onerror>) renders as text",
                '<img src=x onerror="window.__pwned=2">' in err, err)
        T.check("no script ran, no image made",
                ui.js("return typeof window.__pwned") == "undefined" and
                not ui.exists("#broken-plugins img"))
        T.check("the actions with their plugin and settings",
                "rst-ioc-lookup" in ui.text_of("#actions") and "api_key" in ui.text_of("#actions"),
                ui.text_of("#actions"))
        ui.screenshot("integrations")

        # ---- configure a plugin: the password is write-only ----
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#plugins a[href='#/integrations/rst-noise-control']")
        ui.wait_rendered()
        T.check("the plugin needs configuration", "needs configuration" in ui.text_of("main h1"))
        T.check("the password field is empty, type password, 'not set'",
                ui.js("var e=document.getElementById('cfg-api_key');"
                      "return [e.type, e.value, e.placeholder]") == ["password", "", "not set"],
                ui.js("var e=document.getElementById('cfg-api_key');"
                      "return [e.type, e.value, e.placeholder]"))
        ui.type("#cfg-api_key", SECRET)
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#config-submit")
        ui.wait_rendered()
        ui.wait_text("main h1", "ready")
        st, b, _ = ui.call("GET", "/api/plugins/rst-noise-control")
        key = [f for f in b["data"]["config"] if f["key"] == "api_key"][0]
        T.check("the API stored it: configured, the key shown as the mask only",
                b["data"]["configured"] and key["value"] == "********" and
                SECRET not in json.dumps(b), key)
        T.check("after saving, the field is empty again and says 'set'",
                ui.js("var e=document.getElementById('cfg-api_key');return [e.value, e.placeholder]")
                == ["", "set (write a new value to replace it)"])
        T.check("the secret is nowhere in the page (DOM, inputs, storage)",
                SECRET not in ui.driver.page_source and
                SECRET not in ui.js("return [...document.querySelectorAll('input')].map(i=>i.value)"
                                    ".join(' ') + JSON.stringify(sessionStorage)"))
        ui.screenshot("integration-config")

        # ---- read-only ----
        ui.logout()
        ui.login("ro")
        ui.go("/integrations/rst-noise-control")
        T.check("read-only: the configuration shown, no form",
                not ui.exists("#config-form") and "********" in ui.main_text(), ui.main_text()[:300])
        st, b, _ = ui.call("PUT", "/api/plugins/rst-noise-control/config", {"api_key": "x"}, "ro")
        T.check("... and the API refuses a read-only change (403)", st == 403, (st, b))
    except Exception as e:  # noqa: BLE001
        T.check("the flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-integrations")
        except Exception:  # noqa: BLE001
            pass
    finally:
        shutil.rmtree(plugins, ignore_errors=True)
    ui.done()


if __name__ == "__main__":
    main()

"""admin_test.py (ui.admin): the admin screens in headless Chromium.

Users: an admin adds a user whose name is hostile markup (it renders as text, runs nothing),
changes a role, disables a user (who can then not sign in) and enables them again. API clients:
one created (its secret shown once, working with client_credentials), listed, deleted. The audit
log: newest first, filtered, paged. A read-only user sees no admin screen in the navigation, gets
a refusal on the admin URLs, and the API refuses them (403).
"""

import base64
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI, Server  # noqa: E402

XSS = '<img src=x onerror="window.__pwned=1">'


def user(ui, name):
    st, b, _ = ui.call("GET", "/api/users")
    return ([u for u in b["data"] if u["name"] == name] or [None])[0]


def main():
    ui = UI(sys.argv)
    T = ui.T
    try:
        ui.login("adm")
        nav = ui.text_of("#nav")
        T.check("admin: Users, Clients and Audit in the navigation",
                all(x in nav for x in ("Users", "Clients", "Audit")), nav)
        ui.go("/admin/users")
        T.check("the users with their roles", "ana" in ui.text_of("#users") and
                "ro" in ui.text_of("#users"), ui.text_of("#users"))

        # ---- add a user with a hostile name ----
        ui.type("#user-name", XSS)
        ui.js("document.getElementById('user-role').value='read-only'")
        ui.type("#user-password", "pw-for-the-xss-user")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#user-submit")
        ui.wait_rendered()
        T.check("the hostile name is listed as text, no script ran",
                XSS in ui.text_of("#users") and not ui.exists("#users img") and
                ui.js("return typeof window.__pwned") == "undefined", ui.text_of("#users"))
        T.check("the API has the user as read-only", (user(ui, XSS) or {}).get("role") == "read-only")

        # ---- change a role ----
        ana = user(ui, "ana")
        ui.js("var s=document.getElementById('role-%d'); s.value='admin';"
              "s.dispatchEvent(new Event('change'))" % ana["id"])
        ui.wait_text("#users-result", "ana is now admin")
        T.check("role changed through the select: the API says admin",
                user(ui, "ana")["role"] == "admin")
        ui.js("var s=document.getElementById('role-%d'); s.value='analyst';"
              "s.dispatchEvent(new Event('change'))" % ana["id"])
        ui.wait_text("#users-result", "ana is now analyst")

        # ---- disable and enable ----
        ro = user(ui, "ro")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#toggle-%d" % ro["id"])
        ui.wait_rendered()
        T.check("disabled: the list says so, the API too",
                user(ui, "ro")["disabled"] is True and "disabled" in ui.text_of("#users"))
        st, b, _ = ui.srv.call("POST", "/api/token?grant_type=password",
                               body={"username": "ro", "password": Server.PASSWORD})
        T.check("a disabled user cannot sign in", st in (400, 401), (st, b))
        ui.screenshot("admin-users")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#toggle-%d" % ro["id"])
        ui.wait_rendered()
        T.check("enabled again: the API says so", user(ui, "ro")["disabled"] is False)

        # ---- API clients ----
        ui.go("/admin/clients")
        T.check("no client yet", "No client yet" in ui.text_of("#clients"))
        ui.type("#client-name", "siem")
        ui.click("#client-submit")
        ui.wait_for("#new-client-secret")
        cid, sec = ui.text_of("#new-client-id"), ui.text_of("#new-client-secret")
        basic = base64.b64encode(("%s:%s" % (cid, sec)).encode()).decode()
        st, b, _ = ui.srv.call("POST", "/api/token", raw=b"grant_type=client_credentials",
                               headers={"Authorization": "Basic " + basic,
                                        "Content-Type": "application/x-www-form-urlencoded"})
        T.check("the secret shown once works with client_credentials", st == 200, (st, b))
        T.check("the client is listed (read-only), its secret is not in the list",
                "siem" in ui.text_of("#clients") and sec not in ui.text_of("#clients"))
        ui.screenshot("admin-clients")
        ui.go("/admin/users")
        ui.go("/admin/clients")
        T.check("shown once: the secret is gone after leaving the page",
                sec not in ui.driver.page_source)
        siem = [c for c in ui.call("GET", "/api/clients")[1]["data"] if c["name"] == "siem"][0]
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#delete-client-%d" % siem["id"])
        ui.wait_rendered()
        T.check("deleted: gone from the list and the API", "siem" not in ui.text_of("#clients") and
                not ui.call("GET", "/api/clients")[1]["data"])

        # ---- the audit log ----
        for i in range(60):  # enough records for a second page
            ui.call("PUT", "/api/users/%d" % ana["id"], {"role": "analyst" if i % 2 else "read-only"})
        ui.go("/admin/audit")
        txt = ui.text_of("#audit")
        lines = txt.split("\n")
        T.check("the audit log, newest first: the last role change on top",
                len(lines) > 2 and "user.role" in lines[2] and "read-only -> analyst" in lines[2],
                txt[:400])
        T.check("paged: 'Older' leads to the next page", ui.exists("#audit-next"))
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#audit-next")
        ui.wait_rendered()
        T.check("the second page starts at 51", "51\u2013" in ui.text_of("#audit caption"),
                ui.text_of("#audit caption"))
        ui.type("#audit-what", "client.add")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.click("#audit-form button")
        ui.wait_rendered()
        T.check("filtered by what: only client.add", "client.add" in ui.text_of("#audit") and
                "user.role" not in ui.text_of("#audit"), ui.text_of("#audit"))
        ui.screenshot("admin-audit")

        # ---- read-only ----
        ui.logout()
        ui.login("ro")
        nav = ui.text_of("#nav")
        T.check("read-only: no admin screen in the navigation",
                not any(x in nav for x in ("Users", "Clients", "Audit")), nav)
        ui.go("/admin/users")
        T.check("read-only: the admin URL shows a refusal, no user list",
                ui.exists("#admin-refused") and not ui.exists("#users"))
        st, _, _ = ui.call("GET", "/api/users", None, "ro")
        st2, _, _ = ui.call("GET", "/api/audit", None, "ro")
        st3, _, _ = ui.call("POST", "/api/clients", {"name": "x", "role": "admin"}, "ro")
        T.check("... and the API refuses it (403 for users, audit, clients)",
                (st, st2, st3) == (403, 403, 403), (st, st2, st3))
    except Exception as e:  # noqa: BLE001
        T.check("the flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-admin")
        except Exception:  # noqa: BLE001
            pass
    ui.done()


if __name__ == "__main__":
    main()

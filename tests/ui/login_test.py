"""login_test.py (ui.login): signing in and out of the web UI in headless Chromium.

A wrong password shows an error as text; signing in lands on the threat library with the
navigation bar; a bookmarked page asks for sign-in and comes back to it; logout returns to the
login screen and the old token gets 401 from the API; the served pages carry the strict
headers and web/ holds no HTML-parsing sink.
"""

import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from uitest import UI  # noqa: E402


def sinks(web):
    """Files of web/ that use an HTML-parsing or code-evaluating sink."""
    bad = re.compile(r"innerHTML|outerHTML|insertAdjacentHTML|document\.write|\beval\s*\(|"
                     r"new\s+Function|srcdoc|javascript:")
    found = []
    for root, _, files in os.walk(web):
        for f in files:
            p = os.path.join(root, f)
            with open(p, encoding="utf-8", errors="replace") as fh:
                for i, line in enumerate(fh, 1):
                    if bad.search(line):
                        found.append("%s:%d: %s" % (os.path.relpath(p, web), i, line.strip()))
    return found


def main():
    # Access tokens of 65 s: the UI refreshes a minute before expiry, so within seconds.
    ui = UI(sys.argv, env={"TQHOST_TOKEN_TTL": "65"})
    T = ui.T
    try:
        web = os.path.join(ui.src, "web")
        found = sinks(web)
        T.check("web/ has no innerHTML, outerHTML, insertAdjacentHTML, document.write, eval, "
                "new Function", not found, "; ".join(found[:5]))
        with open(os.path.join(web, "index.html")) as f:
            index = f.read()
        T.check("index.html has no inline script or style",
                not re.search(r"<script(?![^>]*\bsrc=)[^>]*>|<style|\sstyle=|\son\w+=", index),
                index)

        # Not signed in: any page leads to the login screen.
        ui.open("/#/library")
        ui.wait_for("#login-user")
        T.check("not signed in: the login screen", "Sign in" in ui.text_of("h1"), ui.main_text())
        T.check("the navigation bar is hidden before sign-in", not ui.find("#nav").is_displayed())
        ui.screenshot("login")

        # A wrong password: an error shown as text, in an aria-live region.
        ui.type("#login-user", "ana")
        ui.type("#login-password", "not the password")
        ui.click("#login-submit")
        err = ui.wait_text("#login-error", "failed")
        T.check("a wrong password shows 'wrong user name or password'",
                "wrong user name or password" in err, err)
        T.check("the error is in an aria-live region",
                ui.find("#login-error").get_attribute("aria-live") == "assertive")
        T.check("still on the login screen", ui.exists("#login-user") and not ui.exists("#logout"))
        ui.screenshot("login-error")

        # Keyboard: the fields are labelled; Enter in the password field submits.
        T.check("the fields are labelled (label for)",
                ui.exists("label[for=login-user]") and ui.exists("label[for=login-password]"))
        ui.type("#login-user", "ana")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.type("#login-password", ui.srv.PASSWORD, enter=True)
        ui.wait_for("#logout")
        ui.wait_rendered()
        T.check("signed in with Enter: back to the page asked for (#/library)",
                ui.driver.current_url.endswith("#/library"), ui.driver.current_url)
        T.check("the navigation bar shows the user and role",
                ui.text_of("#who") == "ana (analyst)", ui.text_of("#who"))
        links = [a.text for a in ui.finds("#nav .nav-links a")]
        T.check("the navigation bar lists the screens (analyst: no admin screens)",
                links[:6] == ["Threat library", "Collections", "Workflows", "Runs", "Feeds",
                              "Integrations"] and "Users" not in links, links)
        T.check("the current screen is marked aria-current=page",
                ui.find("#nav a[aria-current=page]").text == "Threat library")
        ui.screenshot("after-login")

        # Every route of the contract answers: a screen with its heading, or (an unknown id)
        # the API's refusal shown as text.
        for route in ("/collections", "/workflows", "/runs", "/feeds", "/integrations"):
            ui.go(route)
            T.check("%s renders a screen with a heading" % route,
                    ui.exists("main h1") and ui.text_of("main h1"), ui.main_text()[:200])
        for route in ("/runs/999999", "/workflows/999999", "/collections/999999",
                      "/integrations/no-such-plugin"):
            ui.go(route, wait=False)
            ui.wait_for("main#main[data-state=ready], #errors p", visible=False)
            shown = ui.text_of("#errors") if ui.exists("#errors p") else ""
            T.check("%s: a heading or the refusal as text" % route,
                    (ui.exists("main h1") and ui.text_of("main h1")) or shown,
                    ui.main_text()[:200])
        ui.go("/no/such/screen")
        T.check("an unknown route: 'Not found'", "Not found" in ui.text_of("main h1"))

        first = ui.session_token()
        import time
        end = time.monotonic() + 30
        while ui.session_token() == first and time.monotonic() < end:
            time.sleep(0.2)
        token = ui.session_token()
        T.check("the UI refreshes its token before it expires (refresh_token grant)",
                token and token != first, (first, token))
        st, _, _ = ui.srv.call("GET", "/api/users/current", token=token)
        T.check("the refreshed token works against the API", st == 200, st)
        ui.go("/library")
        T.check("the UI goes on working after the refresh", "Threat library" in
                ui.text_of("main h1") and not ui.exists("#login-user"))

        # Logout: back to the login screen, the token is revoked.
        ui.logout()
        T.check("logout returns to the login screen", "Sign in" in ui.text_of("h1"))
        T.check("the session is gone from sessionStorage", ui.session_token() is None)
        st, body, _ = ui.srv.call("GET", "/api/users/current", token=token)
        T.check("the old token gets 401 after logout", st == 401, (st, body))
        ui.go("/library", wait=False)
        ui.wait_for("#login-user")
        T.check("after logout a page leads to the login screen again", ui.exists("#login-user"))

        # A bookmark while signed out: sign in, come back to it.
        ui.open("/#/feeds")
        ui.wait_for("#login-user")
        ui.type("#login-user", "adm")
        ui.js("document.getElementById('main').dataset.state='old'")
        ui.type("#login-password", ui.srv.PASSWORD, enter=True)
        ui.wait_for("#logout")
        ui.wait_rendered()
        T.check("signing in from a bookmark returns to it (#/feeds)",
                ui.driver.current_url.endswith("#/feeds"), ui.driver.current_url)
        links = [a.text for a in ui.finds("#nav .nav-links a")]
        T.check("an admin sees the admin screens", "Users" in links and "Audit" in links, links)

        # A session revoked elsewhere: the next API call leads to the login screen.
        st, _, _ = ui.srv.call("DELETE", "/api/token", token=ui.session_token())
        ui.driver.refresh()  # a reload: the session from sessionStorage is checked
        ui.wait_for("#login-user")
        T.check("a session revoked elsewhere sends the UI to the login screen on reload",
                ui.exists("#login-user"))
        T.check("... saying the session ended", "session ended" in ui.main_text(), ui.main_text())

        # Phone width: the page still fits.
        ui.viewport(390, 800)
        ui.open("/#/login")
        ui.driver.refresh()
        ui.wait_for("#login-user")
        w = ui.js("return document.documentElement.scrollWidth")
        T.check("at 390px the login screen needs no horizontal scrolling", w <= 390, w)
        ui.screenshot("login-phone")
        ui.viewport(1280, 800)
    except Exception as e:  # a timeout or a driver error: one failure with the details
        T.check("the browser flow ran to its end", False, repr(e))
        try:
            ui.screenshot("failure-login")
        except Exception:
            pass
    ui.done()


if __name__ == "__main__":
    main()

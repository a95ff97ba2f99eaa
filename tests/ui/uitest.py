"""uitest.py: what the web UI's browser tests share. Debian's python3-selenium drives Debian's
headless Chromium (chromium-driver) against `tqhost serve` on a free loopback port (plain HTTP
on loopback), with a fresh library, the repository's web/ folder and rstsim behind the
rst-ioc-lookup plugin.

    ui = UI(sys.argv)              # argv: tqhost, source dir, rstsim, screenshot dir
    ui.login("ana")                # users: adm (admin), ana (analyst), ro (read-only)
    ui.go("/library")              # a hash route; waits until the screen is rendered
    ui.wait_for("#results tbody tr")
    ui.text_of("h1"); ui.click("#logout"); ui.screenshot("library")
    ui.T.check("...", cond)        # tqapi.Tally: ok:/FAIL: lines
    ui.done()                      # checks the browser's console (no CSP report, no JS error),
                                   # stops everything, exits non-zero on any failure

The API is at hand for setting up and for checks: ui.srv.call(...), ui.token("ana").
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
from tqapi import Server, Tally  # noqa: E402

from selenium import webdriver  # noqa: E402
from selenium.common.exceptions import TimeoutException, WebDriverException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402,F401 (for the tests)
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

USERS = {"adm": "admin", "ana": "analyst", "ro": "read-only"}
WIDTH, HEIGHT = 1280, 800


class UI:
    def __init__(self, argv, users=USERS, with_sim=True, env=None):
        if len(argv) < 5:
            sys.exit("usage: %s TQHOST SOURCE_DIR RSTSIM SCREENSHOT_DIR" % argv[0])
        self.tqhost, self.src, self.rstsim, self.shots = (os.path.abspath(a) for a in argv[1:5])
        os.makedirs(self.shots, exist_ok=True)
        self.T = Tally()
        self.work = tempfile.mkdtemp(prefix="tq-ui-")
        self.sim = None
        self.sim_url = None
        self.driver = None
        self.srv = None
        self._tokens = {}
        try:
            if with_sim:
                self._start_sim()
            e = {"TQHOST_LOGIN_DELAY": "1", "TQHOST_TICK_S": "0",
                 "TQHOST_PLUGINS": os.path.join(self.src, "plugins"),
                 "TQHOST_ACTIONS": os.path.join(self.src, "actions")}
            e.update(env or {})
            self.srv = Server(self.tqhost, self.work, env=e,
                              args=["--insecure-http", "--web", os.path.join(self.src, "web")])
            for name, role in users.items():
                self.srv.add_user(name, role)
            if self.sim_url:
                self.srv.cli("plugin", "configure", "rst-ioc-lookup", "api_key=ui-test-key",
                             "base_url=" + self.sim_url)
            self._start_browser()
        except Exception:
            self.stop()
            raise

    # ---- processes ----
    def _start_sim(self):
        self.sim = subprocess.Popen([self.rstsim, "--port", "0", "--hit-ratio", "1"],
                                    stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
        m = re.match(r"rstsim listening on 127\.0\.0\.1:(\d+)",
                     self.sim.stdout.readline().decode())
        if not m:
            raise RuntimeError("rstsim did not start")
        self.sim_url = "http://127.0.0.1:%s/v1" % m.group(1)

    def _start_browser(self):
        opts = webdriver.ChromeOptions()
        opts.binary_location = "/usr/bin/chromium"
        for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--window-size=%d,%d" % (WIDTH, HEIGHT), "--disable-extensions",
                  "--no-first-run", "--disable-background-networking", "--lang=en-US"):
            opts.add_argument(a)
        opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
        service = webdriver.ChromeService(executable_path="/usr/bin/chromedriver",
                                          log_output=os.path.join(self.work, "chromedriver.log")) \
            if hasattr(webdriver, "ChromeService") else None
        if service is None:
            from selenium.webdriver.chrome.service import Service
            service = Service("/usr/bin/chromedriver",
                              log_path=os.path.join(self.work, "chromedriver.log"))
        self.driver = webdriver.Chrome(options=opts, service=service)
        self.viewport(WIDTH, HEIGHT)
        self.driver.set_script_timeout(30)
        self.console = []

    def viewport(self, width, height):
        """The page's size in CSS pixels (screenshots come out exactly this size)."""
        self.driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", {
            "width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600})

    def stop(self):
        if self.driver:
            try:
                self.driver.quit()
            except WebDriverException:
                pass
            self.driver = None
        if self.srv:
            self.srv.stop()
            self.srv = None
        if self.sim:
            self.sim.terminate()
            self.sim.wait()
            self.sim = None

    def done(self):
        bad = [e for e in self.logs() if e.get("level") == "SEVERE" or
               "Content Security Policy" in e.get("message", "") or
               "Refused to" in e.get("message", "")]
        # 4xx answers the test provoked on purpose are logged by Chromium as failed resources;
        # anything else (a JS error, a CSP violation) fails the test.
        bad = [e for e in bad if not re.search(r"Failed to load resource: the server responded "
                                               r"with a status of 4\d\d", e.get("message", ""))]
        self.T.check("the browser's console: no JS error, no CSP violation", not bad,
                     "; ".join(e.get("message", "")[:300] for e in bad[:5]))
        self.stop()
        shutil.rmtree(self.work, ignore_errors=True)
        self.T.done()

    # ---- the API, for setting up and checking ----
    def token(self, name):
        if name not in self._tokens:
            self._tokens[name] = self.srv.login(name)
        return self._tokens[name]

    def call(self, method, path, body=None, user="adm"):
        return self.srv.call(method, path, body=body, token=self.token(user) if user else None)

    # ---- the browser ----
    @property
    def base(self):
        return self.srv.url

    def logs(self):
        try:
            got = self.driver.get_log("browser")
        except WebDriverException:
            got = []
        self.console.extend(got)
        return list(self.console)

    def open(self, path="/"):
        self.driver.get(self.base + path)

    def go(self, route, wait=True, timeout=15):
        """Navigates to a hash route ("/library?type=IP%20Address") and waits until rendered."""
        if not self.driver.current_url.startswith(self.base):
            self.open("/")
        # The same hash again fires no hashchange: the router is told to render anyway.
        self.driver.execute_script(
            "document.getElementById('main').dataset.state='old';"
            "if (window.location.hash === '#' + arguments[0])"
            "  window.dispatchEvent(new HashChangeEvent('hashchange'));"
            "else window.location.hash = arguments[0];", route)
        if wait:
            self.wait_rendered(timeout)

    def wait_rendered(self, timeout=15):
        self.wait_for("main#main[data-state=ready]", timeout)

    def wait_for(self, css, timeout=15, visible=True):
        """The first element matching css once it exists (and is displayed)."""
        def find(d):
            for el in d.find_elements(By.CSS_SELECTOR, css):
                try:
                    if not visible or el.is_displayed():
                        return el
                except WebDriverException:
                    pass
            return False
        try:
            return WebDriverWait(self.driver, timeout, 0.05).until(find)
        except TimeoutException:
            raise TimeoutException("no %s within %ss (url %s; main: %s)" % (
                css, timeout, self.driver.current_url, self.main_text()[:300]))

    def wait_text(self, css, text, timeout=15):
        """Waits until the element at css holds text; returns its text."""
        end = time.monotonic() + timeout
        got = ""
        while time.monotonic() < end:
            try:
                got = self.text_of(css)
                if text in got:
                    return got
            except WebDriverException:
                pass
            time.sleep(0.05)
        raise TimeoutException("%r not in %s within %ss (it holds %r)" % (text, css, timeout, got))

    def wait_gone(self, css, timeout=15):
        WebDriverWait(self.driver, timeout, 0.05).until(
            lambda d: not d.find_elements(By.CSS_SELECTOR, css))

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def finds(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def exists(self, css):
        return bool(self.finds(css))

    def text_of(self, css):
        return self.find(css).text

    def main_text(self):
        try:
            return self.driver.find_element(By.ID, "main").text
        except WebDriverException:
            return ""

    def click(self, css):
        el = self.wait_for(css)
        el.click()
        return el

    def type(self, css, text, clear=True, enter=False):
        el = self.wait_for(css)
        if clear:
            el.clear()
        el.send_keys(text)
        if enter:
            el.send_keys(Keys.ENTER)
        return el

    def js(self, script, *args):
        return self.driver.execute_script(script, *args)

    def screenshot(self, name):
        path = os.path.join(self.shots, name + ".png")
        self.driver.save_screenshot(path)
        return path

    def login(self, name, password=None):
        """Signs in through the login screen; waits for the screen it leads to."""
        self.open("/#/login")
        self.wait_for("#login-user")
        self.type("#login-user", name)
        self.type("#login-password", password or Server.PASSWORD)
        self.js("document.getElementById('main').dataset.state='old'")
        self.click("#login-submit")
        self.wait_for("#logout")
        self.wait_rendered()

    def logout(self):
        self.click("#logout")
        self.wait_for("#login-user")

    def session_token(self):
        v = self.js("return sessionStorage.getItem('tqhost.session')")
        import json
        return json.loads(v)["access"] if v else None

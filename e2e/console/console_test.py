"""The web console in a real browser: Debian's headless Chromium driven by
Selenium (pinned in requirements.txt). Run by e2e/test_console.sh against a
kaa-node it started; prints one line per step and exits 1 at the first
failure (with a screenshot of the page and its console log).

    console_test.py BASE_URL SCREENSHOT_DIR WORK_DIR
Environment: KAA_TA_PASSWORD, KAA_DEV_PASSWORD, KAA_VIEWER_PASSWORD,
KAA_ADMIN_PASSWORD (users ta, dev, viewer, admin, created by the caller), KAA_NODE_ID (the node to find),
KAA_DEVICE and KAA_BOOTSTRAP (kaa-device and the bootstrap address: the
device connects with the application token the console shows).
"""
import json
import os
import subprocess
import sys
import traceback

from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import Select, WebDriverWait

BASE, SHOTS, WORK = sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3]
DEVICES = []
PASSWORDS = {
    "ta": os.environ["KAA_TA_PASSWORD"],
    "dev": os.environ["KAA_DEV_PASSWORD"],
    "admin": os.environ["KAA_ADMIN_PASSWORD"],
    "viewer": os.environ["KAA_VIEWER_PASSWORD"],
}
os.makedirs(SHOTS, exist_ok=True)


def browser():
    opts = webdriver.ChromeOptions()
    opts.binary_location = os.environ.get("KAA_CHROMIUM", "/usr/bin/chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1280,900", "--no-first-run", "--disable-extensions"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    svc = Service(executable_path=os.environ.get("KAA_CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=svc, options=opts)


d = browser()
wait = WebDriverWait(d, 15)
step_no = 0


def step(text):
    global step_no
    step_no += 1
    print(f"  step {step_no}: {text}", flush=True)


def shot(name):
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def find(css):
    return wait.until(EC.visibility_of_element_located((By.CSS_SELECTOR, css)))


def click(css):
    wait.until(EC.element_to_be_clickable((By.CSS_SELECTOR, css))).click()


def text_appears(css, text):
    wait.until(EC.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))


def fill(css, value):
    el = find(css)
    el.clear()
    el.send_keys(value)


def set_textarea(css, value):
    # send_keys into a textarea is slow and auto-indents nothing, but
    # keep it simple and exact: select all, then type.
    el = find(css)
    el.clear()
    el.send_keys(value)


def login(user, password=None):
    d.get(BASE + "/console/")
    fill("#login-user", user)
    fill("#login-password", password if password is not None else PASSWORDS[user])
    click("form button[type=submit]")


def logout():
    click("#logout")
    find("#login-user")


def storage_dump():
    return d.execute_script(
        "return JSON.stringify({l: Object.assign({}, localStorage),"
        " s: Object.assign({}, sessionStorage), c: document.cookie});")


def no_overflow():
    return d.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth + 1;")


try:
    step("a wrong password is refused in the UI")
    login("ta", "not-the-password")
    text_appears("#login-error", "Wrong user or password")
    shot("login-refused")

    step("the tenant admin logs in and sees the applications page")
    login("ta")
    text_appears("#who", "ta (tenant-admin)")
    click("header nav a[href='/console/applications']")
    find("[data-testid=applications] h2")
    shot("applications-empty")

    step("creates an application through the form")
    click("[data-testid=applications] .section-head button")
    fill("#f-name", "fleet")
    Select(find("#f-credentialsMode")).select_by_value("trustful")
    click("#create-form button[type=submit]")
    text_appears("[data-testid=applications] table", "fleet")
    link = find("[data-testid=applications] table a")
    app_path = link.get_attribute("href").split("/console", 1)[1]
    app_id = app_path.split("/")[2]
    shot("applications")

    step("no password in localStorage/sessionStorage, no session cookie visible to scripts")
    dump = storage_dump()
    for p in PASSWORDS.values():
        assert p not in dump, dump
    assert "kaa_session" not in dump, dump

    step("a tenant admin may not create schemas: the UI offers no button")
    d.get(BASE + f"/console/apps/{app_id}/schemas")
    find("[data-testid=schemas] h2")
    assert not d.find_elements(By.CSS_SELECTOR, "[data-testid=schemas] .section-head button")
    step("a state-changing request from the page without X-CSRF-Token is refused (403)")
    status = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch('/api/v1/applications/%s/schemas', {method: 'POST', credentials: 'same-origin',
              headers: {'Content-Type': 'application/json', 'X-Requested-With': 'kaa-console'},
              body: '{"kind":"log","schema":{"type":"string"}}'}).then(r => done(r.status));
    """ % app_id)
    assert status == 403, status
    logout()

    step("the developer logs in and creates a configuration schema")
    login("dev")
    text_appears("#who", "dev (tenant-developer)")
    d.get(BASE + f"/console/apps/{app_id}/schemas")
    click("[data-testid=schemas] .section-head button")
    Select(find("#f-kind")).select_by_value("configuration")
    set_textarea("#f-schema", json.dumps({
        "type": "record", "name": "Config",
        "fields": [{"name": "rate", "type": "int", "default": 1}]}))
    click("#create-form button[type=submit]")
    text_appears("[data-testid=schemas] table", "configuration")
    shot("schemas")

    step("a schema the API refuses shows its error at the schema field")
    click("[data-testid=schemas] .section-head button")
    Select(find("#f-kind")).select_by_value("log")
    set_textarea("#f-schema", json.dumps({
        "type": "record", "name": "Log",
        "fields": [{"name": "x", "type": "no-such-type"}]}))
    click("#create-form button[type=submit]")
    err = find("#f-schema-error")
    assert "$.schema" in err.text, err.text
    assert find("#f-schema").get_attribute("aria-invalid") == "true"
    shot("schema-error")

    step("a group and a configuration; a body the schema refuses shows its error at the field")
    d.get(BASE + f"/console/apps/{app_id}/groups")
    click("[data-testid=groups] .section-head button")
    fill("#f-name", "everyone")
    fill("#f-weight", "1")
    click("#create-form button[type=submit]")
    text_appears("[data-testid=groups] table", "everyone")
    d.get(BASE + f"/console/apps/{app_id}/configurations")
    click("[data-testid=configurations] .section-head button")
    find("#f-groupId option")
    set_textarea("#f-body", json.dumps({"rate": "fast"}))
    click("#create-form button[type=submit]")
    err = find("#f-body-error")
    assert "$.body" in err.text, err.text
    set_textarea("#f-body", json.dumps({"rate": 5}))
    click("#create-form button[type=submit]")
    text_appears("[data-testid=configurations] table", '"rate":5')
    shot("configurations")

    step("kaa-device connects with the application token shown in the console")
    d.get(BASE + f"/console/apps/{app_id}/schemas")
    token = find("h1 .token").text.split()[-1]
    dev_log = open(os.path.join(WORK, "device.err"), "w")
    device = subprocess.Popen(
        [os.environ["KAA_DEVICE"], "--bootstrap", os.environ["KAA_BOOTSTRAP"], "--app-token", token,
         "--state-dir", os.path.join(WORK, "device-state"), "--duration", "240", "--verbose"],
        stdout=subprocess.DEVNULL, stderr=dev_log)
    DEVICES.append(device)

    def device_says(text):
        with open(os.path.join(WORK, "device.err")) as f:
            return text in f.read()
    WebDriverWait(d, 30, poll_frequency=0.2).until(lambda _: device_says('"rate":5'))

    step("the endpoints tab lists it online (or says the server has no endpoint API)")
    d.get(BASE + f"/console/apps/{app_id}/endpoints")
    wait.until(lambda _: d.find_elements(By.CSS_SELECTOR, "[data-testid=endpoints] table, #endpoints-missing"))
    fleet_api = not d.find_elements(By.CSS_SELECTOR, "#endpoints-missing")
    if fleet_api:
        WebDriverWait(d, 30, poll_frequency=0.5).until(
            lambda _: d.find_elements(By.CSS_SELECTOR, "[data-testid=endpoints] td .online"))
        shot("endpoints")
        click("[data-testid=endpoints] table a")
        text_appears("[data-testid=endpoint] .props", "online on " + os.environ["KAA_NODE_ID"])
        text_appears("[data-testid=endpoint]", '"rate": 5')
        shot("endpoint")
    else:
        print("    (no fleet API on this build)", flush=True)
        shot("endpoints")

    step("back to configurations: edits it in the JSON editor (PUT with If-Match)")
    d.get(BASE + f"/console/apps/{app_id}/configurations")
    click("[data-testid=configurations] table button:not(.danger)")
    set_textarea("#edit-form #f-body", json.dumps({"rate": "slow"}))
    click("#edit-form button[type=submit]")
    err = find("#edit-form #f-body-error")
    assert "$.body" in err.text, err.text
    set_textarea("#edit-form #f-body", json.dumps({"rate": 7}))
    click("#edit-form button[type=submit]")
    text_appears("[data-testid=configurations] table", '"rate":7')

    step("kaa-device prints the new configuration")
    WebDriverWait(d, 30, poll_frequency=0.2).until(lambda _: device_says('"rate":7'))

    step("a topic, and a notification sent on it")
    d.get(BASE + f"/console/apps/{app_id}/topics")
    click("[data-testid=topics] .section-head button")
    fill("#f-name", "alerts")
    click("#create-form button[type=submit]")
    text_appears("[data-testid=topics] table", "alerts")
    d.get(BASE + f"/console/apps/{app_id}/schemas")
    click("[data-testid=schemas] .section-head button")
    Select(find("#f-kind")).select_by_value("notification")
    set_textarea("#f-schema", json.dumps({
        "type": "record", "name": "Alert", "fields": [{"name": "text", "type": "string"}]}))
    click("#create-form button[type=submit]")
    text_appears("[data-testid=schemas] table", "notification")
    d.get(BASE + f"/console/apps/{app_id}/notifications")
    click("[data-testid=notifications] .section-head button")
    find("#f-topicId option")
    set_textarea("#f-body", json.dumps({"text": "hello fleet"}))
    click("#create-form button[type=submit]")
    text_appears("[data-testid=notifications] table", "hello fleet")
    shot("notifications")

    step("a log appender (endpoint-store) and an SDK profile; the SDK download answers a tar")
    d.get(BASE + f"/console/apps/{app_id}/log-appenders")
    click("[data-testid=log-appenders] .section-head button")
    fill("#f-name", "store")
    click("#create-form button[type=submit]")
    text_appears("[data-testid=log-appenders] table", "endpoint-store")
    d.get(BASE + f"/console/apps/{app_id}/sdk-profiles")
    click("[data-testid=sdk-profiles] .section-head button")
    fill("#f-name", "v1")
    set_textarea("#f-schemaVersions", json.dumps({"configuration": 1}))
    set_textarea("#f-bootstrap", json.dumps([os.environ["KAA_BOOTSTRAP"]]))
    click("#create-form button[type=submit]")
    text_appears("[data-testid=sdk-profiles] table", "v1")
    href = find("[data-testid=sdk-profiles] table a.button").get_attribute("href")
    got = d.execute_async_script("""
        const done = arguments[arguments.length - 1];
        fetch(arguments[0], {credentials: 'same-origin'}).then(
            r => done([r.status, r.headers.get('content-type')]));
    """, href)
    assert got[0] == 200 and got[1].startswith("application/x-tar"), got
    shot("sdk-profiles")

    step("works on a narrow window (no horizontal page scroll)")
    d.set_window_size(420, 900)
    d.get(BASE + f"/console/apps/{app_id}/schemas")
    find("[data-testid=schemas] table")
    assert no_overflow(), "page wider than a 420 px window"
    shot("schemas-narrow")
    d.set_window_size(1280, 900)
    logout()

    step("a tenant user (read-only) sees the data but is offered no edit")
    login("viewer")
    text_appears("#who", "viewer (tenant-user)")
    d.get(BASE + f"/console/apps/{app_id}/configurations")
    text_appears("[data-testid=configurations] table", '"rate":7')
    assert not d.find_elements(By.CSS_SELECTOR, "[data-testid=configurations] button")
    d.get(BASE + f"/console/apps/{app_id}/schemas")
    text_appears("[data-testid=schemas] table", "configuration")
    assert not d.find_elements(By.CSS_SELECTOR, "[data-testid=schemas] button")
    shot("read-only")
    logout()

    step("the platform admin sees the cluster's nodes and the overview chart")
    login("admin")
    text_appears("#who", "admin (platform-admin)")
    find("[data-testid=overview] .chart canvas")
    find("#overview-summary")
    shot("overview")
    click("header nav a[href='/console/nodes']")
    text_appears("[data-testid=nodes] table", os.environ["KAA_NODE_ID"])
    shot("nodes")

    step("the platform admin creates a tenant and its admin user")
    click("header nav a[href='/console/tenants']")
    click("[data-testid=tenants] .section-head button")
    fill("#f-name", "beta")
    click("#create-form button[type=submit]")
    text_appears("[data-testid=tenants] table", "beta")
    d.find_element(By.LINK_TEXT, "beta").click()
    click("[data-testid=users] .section-head button")
    fill("#f-name", "beta-admin")
    Select(find("#f-role")).select_by_value("tenant-admin")
    fill("#f-password", "beta-admin-password-1")
    click("#create-form button[type=submit]")
    text_appears("[data-testid=users] table", "beta-admin")
    shot("tenant")
    assert "beta-admin-password-1" not in storage_dump()

    step("keyboard: Tab from the page start reaches the skip link and the navigation")
    d.get(BASE + "/console/tenants")
    find("[data-testid=tenants] h2")
    body = d.find_element(By.TAG_NAME, "body")
    body.send_keys("\ue004")  # Tab
    assert d.switch_to.active_element.get_attribute("class") == "skip"

    step("logs out: the session is gone after a reload")
    logout()
    d.get(BASE + "/console/nodes")
    find("#login-user")
    dump = storage_dump()
    for p in PASSWORDS.values():
        assert p not in dump, dump
    print("console_test: OK", flush=True)
    d.quit()
    for p in DEVICES:
        p.terminate()
        p.wait()
except Exception:
    traceback.print_exc()
    try:
        shot(f"failed-step-{step_no}")
        for e in d.get_log("browser"):
            print("  browser:", e, flush=True)
        print("  url:", d.current_url, flush=True)
    finally:
        d.quit()
        for p in DEVICES:
            p.kill()
        try:
            print(open(os.path.join(WORK, "device.err")).read()[-3000:])
        except OSError:
            pass
    sys.exit(1)

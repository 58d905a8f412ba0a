"""The dashboard in a real browser (issue 17's proof): sign in, DAG states, live updates, retry
from the page, read-only tokens, CSRF. Each page's screenshot is taken (docs/images/ holds them; see conftest.IMAGES)."""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver

from conftest import Server, screenshot, submit, wait_until


def sign_in(driver: WebDriver, server: Server, token: str) -> None:
    driver.delete_all_cookies()
    driver.get(server.base + "/login")
    field = driver.find_element(By.NAME, "token")
    field.send_keys(token)
    field.submit()
    wait_until(lambda: driver.current_url.rstrip("/") == server.base, what="the overview after sign-in")


def node_state(driver: WebDriver, step_name: str) -> str:
    """The state a DAG node shows, read from its SVG (class and the words under the name)."""
    for node in driver.find_elements(By.CSS_SELECTOR, "svg.dag a[data-step-id]"):
        if node.find_element(By.CSS_SELECTOR, "text.node-name").text == step_name:
            words = node.find_element(By.CSS_SELECTOR, "text.node-state").text
            css = node.find_element(By.TAG_NAME, "rect").get_attribute("class") or ""
            return f"{css.replace('node ', '')} | {words}"
    raise AssertionError(f"no node for step {step_name}")


def task_state(server: Server, task: str) -> str:
    return str(json.loads(server.cli("task", "show", task, "--json"))["state"])


def test_sign_in_and_pages(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    browser.delete_all_cookies()
    browser.get(server.base + "/tasks")
    assert "/login" in browser.current_url
    screenshot(browser, "login")
    browser.find_element(By.NAME, "token").send_keys("orc_000000000000_wrong")
    browser.find_element(By.NAME, "token").submit()
    assert "not known" in browser.find_element(By.ID, "login-error").text
    sign_in(browser, server, tokens["writer"])
    assert browser.find_element(By.TAG_NAME, "h1").text == "Overview"
    cookie = browser.get_cookie("orcastra_session")
    assert cookie is not None and cookie["httpOnly"] and cookie.get("sameSite") == "Strict"


def test_diamond_and_failing_task_show_final_states(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    sign_in(browser, server, tokens["writer"])
    diamond = submit(server, "web/diamond")
    failing = submit(server, "web/failing")
    wait_until(lambda: task_state(server, diamond) == "complete", what="the diamond to complete")
    wait_until(lambda: task_state(server, failing) == "error", what="the failing task to fail")

    browser.get(f"{server.base}/tasks/{diamond}")
    for step in ["start", "left", "right", "join"]:
        assert node_state(browser, step) == "st-complete | ✓ complete"
    screenshot(browser, "task-diamond")

    browser.get(f"{server.base}/tasks/{failing}")
    assert node_state(browser, "prepare") == "st-complete | ✓ complete"
    assert node_state(browser, "explode") == "st-error | ✗ error"
    assert node_state(browser, "never").startswith("st-pending")
    screenshot(browser, "task-failing")

    browser.find_element(By.CSS_SELECTOR, "svg.dag a[data-step-id] rect.st-error").click()
    wait_until(lambda: "/steps/" in browser.current_url, what="the step page")
    assert "disk full" in browser.find_element(By.ID, "attempts").text
    screenshot(browser, "step")

    browser.get(server.base + "/tasks")
    assert diamond[:8] in browser.find_element(By.ID, "task-list").text
    screenshot(browser, "tasks")
    browser.get(server.base + "/")
    screenshot(browser, "overview")
    browser.get(server.base + "/templates/web/diamond/1.0.0")
    screenshot(browser, "template")
    browser.get(server.base + "/workers")
    assert "web" in browser.find_element(By.ID, "worker-list").text
    screenshot(browser, "workers")


def test_running_step_turns_complete_live(browser: WebDriver, server: Server, tokens: dict[str, str], workdir: Path) -> None:
    sign_in(browser, server, tokens["writer"])
    task = submit(server, "web/gated")
    browser.get(f"{server.base}/tasks/{task}")
    wait_until(lambda: node_state(browser, "wait").startswith("st-in_progress"), what="the step to show running")
    wait_until(lambda: "live" in browser.find_element(By.ID, "live-status").text, what="the live stream")
    (workdir / "release").touch()
    released = time.monotonic()
    wait_until(lambda: node_state(browser, "wait") == "st-complete | ✓ complete", timeout=5, what="the step to turn complete")
    elapsed = time.monotonic() - released
    print(f"live update: the step showed complete {elapsed * 1000:.0f} ms after its command could finish")
    assert elapsed < 1.0, f"the page showed the completion after {elapsed:.2f} s"
    assert node_state(browser, "after").startswith("st-in_progress") or node_state(browser, "after").startswith("st-enqueued")
    screenshot(browser, "task-live")
    (workdir / "release-after").touch()
    wait_until(lambda: "complete" in browser.find_element(By.ID, "task-state").text, timeout=10, what="the task to finish live")


def test_retry_failed_step_from_the_page(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    sign_in(browser, server, tokens["writer"])
    task = submit(server, "web/flaky")
    wait_until(lambda: task_state(server, task) == "error", what="the flaky step to fail")
    browser.get(f"{server.base}/tasks/{task}")
    browser.find_element(By.LINK_TEXT, "flaky").click()
    browser.find_element(By.ID, "retry-step").click()
    assert "Retry step flaky?" in browser.find_element(By.TAG_NAME, "h1").text
    screenshot(browser, "confirm-retry")
    browser.find_element(By.ID, "confirm").click()
    wait_until(lambda: f"/tasks/{task}" in browser.current_url, what="the task page after the retry")
    assert "put back in line" in browser.find_element(By.ID, "outcome").text
    wait_until(lambda: "complete" in browser.find_element(By.ID, "task-state").text, timeout=15,
               what="the task to finish after the retry (live)")
    assert task_state(server, task) == "complete"
    browser.get(f"{server.base}/tasks/{task}")
    assert node_state(browser, "flaky") == "st-complete | ✓ complete"


def test_read_only_token_sees_no_buttons(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    failing = submit(server, "web/failing")
    wait_until(lambda: task_state(server, failing) == "error", what="the failing task to fail")
    sign_in(browser, server, tokens["reader"])
    browser.get(f"{server.base}/tasks/{failing}")
    assert browser.find_elements(By.CSS_SELECTOR, ".actions") == []
    assert "read-only" in browser.find_element(By.CSS_SELECTOR, "header .who").text
    browser.find_element(By.LINK_TEXT, "explode").click()
    assert browser.find_elements(By.ID, "retry-step") == []
    assert browser.find_elements(By.ID, "resolve-step") == []
    screenshot(browser, "read-only-step")


def test_post_without_csrf_token_is_refused(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    task = submit(server, "web/diamond", later="1h")  # pending for an hour: nothing but a cancel moves it
    sign_in(browser, server, tokens["writer"])
    session = browser.get_cookie("orcastra_session")
    assert session is not None
    request = urllib.request.Request(f"{server.base}/tasks/{task}/cancel", data=b"reason=forged", method="POST",
                                     headers={"Cookie": f"orcastra_session={session['value']}",
                                              "Content-Type": "application/x-www-form-urlencoded"})
    try:
        urllib.request.urlopen(request, timeout=10)
        raise AssertionError("the POST without a CSRF token was accepted")
    except urllib.error.HTTPError as error:
        assert error.code == 403
        assert "CSRF" in error.read().decode()
    assert task_state(server, task) == "pending"
    # The same action with the form's token is done.
    browser.get(f"{server.base}/tasks/{task}/cancel")
    browser.find_element(By.ID, "confirm").click()
    wait_until(lambda: task_state(server, task) == "cancelled", what="the task to be cancelled")


def test_phone_width(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    sign_in(browser, server, tokens["writer"])
    diamond = submit(server, "web/diamond")
    wait_until(lambda: task_state(server, diamond) == "complete", what="the diamond to complete")
    browser.set_window_size(390, 844)
    try:
        browser.get(f"{server.base}/tasks/{diamond}")
        width = browser.execute_script("return document.documentElement.scrollWidth")
        assert width <= 400, f"the page is {width} px wide at phone width"
        screenshot(browser, "phone-task")
    finally:
        browser.set_window_size(1280, 900)


def test_thousand_step_fan_stays_readable(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    """1 → 998 → 1 steps (namespace idle: no worker serves it, so they wait): the wide layer is one box."""
    sign_in(browser, server, tokens["writer"])
    task = submit(server, "idle/fan")
    started = time.monotonic()
    browser.get(f"{server.base}/tasks/{task}")
    loaded = time.monotonic() - started
    timing = browser.execute_script(
        "var n = performance.getEntriesByType('navigation')[0];"
        "return [n.responseStart - n.requestStart, n.responseEnd - n.requestStart, n.domContentLoadedEventEnd - n.requestStart];")
    print(f"the 1,000-step task page: first byte {timing[0]:.0f} ms, whole response {timing[1]:.0f} ms, "
          f"DOM ready {timing[2]:.0f} ms, load seen by Selenium {loaded * 1000:.0f} ms")
    # The server's part (target < 1 s, docs/benchmarks.md); the bound only catches a gross regression.
    assert timing[1] < 3000, f"the server took {timing[1]:.0f} ms"
    groups = browser.find_elements(By.CSS_SELECTOR, "svg.dag a[data-group]")
    assert len(groups) == 1
    assert groups[0].find_element(By.CSS_SELECTOR, "text.node-name").text == "998 steps"
    assert len(browser.find_elements(By.CSS_SELECTOR, "#step-table tbody tr")) == 1000
    screenshot(browser, "task-1000-steps")


def test_task_list_rows_update_live(browser: WebDriver, server: Server, tokens: dict[str, str], workdir: Path) -> None:
    sign_in(browser, server, tokens["writer"])
    task = submit(server, "web/held")
    wait_until(lambda: task_state(server, task) == "in_progress", what="the held task to start")
    browser.get(f"{server.base}/tasks?template=held")
    row = f'#task-list tr[data-task-id="{task}"]'
    assert "running" in browser.find_element(By.CSS_SELECTOR, row).text
    browser.execute_script("window.notReloaded = true;")
    (workdir / "release-list").touch()
    wait_until(lambda: "complete" in browser.find_element(By.CSS_SELECTOR, row).text, timeout=10,
               what="the row to show the task complete")
    assert browser.execute_script("return window.notReloaded === true;"), "the page was reloaded"


def test_keyboard_reaches_a_dag_node(browser: WebDriver, server: Server, tokens: dict[str, str]) -> None:
    """Tab order: the skip link first; tabbing on reaches the DAG's nodes, and Enter opens a step."""
    sign_in(browser, server, tokens["reader"])
    diamond = submit(server, "web/diamond")
    wait_until(lambda: task_state(server, diamond) == "complete", what="the diamond to complete")
    browser.get(f"{server.base}/tasks/{diamond}")
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    assert browser.switch_to.active_element.text == "Skip to content"
    for _ in range(40):
        browser.switch_to.active_element.send_keys(Keys.TAB)
        if browser.switch_to.active_element.get_attribute("data-step-id"):
            break
    focused = browser.switch_to.active_element
    assert focused.get_attribute("data-step-id"), "no DAG node took the focus within 40 tabs"
    outline = browser.execute_script("return getComputedStyle(arguments[0].querySelector('rect')).stroke", focused)
    assert outline == "rgb(227, 160, 8)", f"the focused node shows no focus ring ({outline})"
    focused.send_keys(Keys.ENTER)
    wait_until(lambda: "/steps/" in browser.current_url, what="Enter on a node to open its step")

"""The web remote in a real browser (Debian's chromium and chromium-driver, driven by selenium) on
the real page against a real headless-window show: a look, the strength slider, a recording that
decodes, and a snapshot that downloads. Skipped, with the reason, where the browser is missing
(.ci/run installs it where it can)."""

import glob
import json
import os
import shutil
import signal
import time
import urllib.request

import cv2
import numpy as np
import pytest

from tests.test_web_show import start_show, state, wait_for_frames

pytestmark = pytest.mark.slow
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="selenium is not installed (pip install selenium)"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")
if not CHROMIUM or not DRIVER:
    pytest.skip(
        "no chromium / chromedriver (apt-get install chromium chromium-driver)", allow_module_level=True
    )

PHONE = (390, 844)  # CSS pixels of a common phone
WAIT_S = 20.0


def until(check, what: str):
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def show(tmp_path):
    show, url = start_show(tmp_path, "--web", "127.0.0.1:0")
    wait_for_frames(url, 10)
    yield url, tmp_path
    show.send_signal(signal.SIGTERM)
    show.communicate(timeout=30)


@pytest.fixture
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    options.add_argument(f"--window-size={PHONE[0]},{PHONE[1]}")
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def test_a_phone_runs_the_show(show, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    url, folder = show
    browser.get(url)
    until(lambda: browser.find_element(By.ID, "link").text == "live", "the page's socket")
    until(lambda: browser.find_elements(By.CSS_SELECTOR, "button.look"), "the looks")
    until(lambda: browser.find_element(By.ID, "thumb").get_attribute("src"), "a thumbnail")
    if path := os.environ.get("DREAMCAM_WEB_SCREENSHOT"):  # the README's picture
        time.sleep(1.0)
        browser.save_screenshot(path)

    # a look button: the show's look changes (read back over the state API)
    browser.find_element(By.CSS_SELECTOR, 'button.look[data-look="fur"]').click()
    until(lambda: state(url)["look"] == "fur", "the look to change")
    until(
        lambda: (
            browser.find_element(By.CSS_SELECTOR, 'button.look[data-look="fur"]').get_attribute(
                "aria-pressed"
            )
            == "true"
        ),
        "the page to mark the look",
    )

    # the strength slider, dragged to the left: the show's strength falls
    before = state(url)["strength"]
    slider = browser.find_element(By.ID, "ctl-strength")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", slider)
    ActionChains(browser).click_and_hold(slider).move_by_offset(
        -slider.size["width"] // 3, 0
    ).release().perform()
    until(lambda: state(url)["strength"] < before * 0.8, f"strength below {before}")

    # a change from elsewhere (a script here; keys, OSC and MIDI alike) moves the page's slider
    until(lambda: send(url, "/dreamcam/strength", 0.3), "the script's change")
    until(lambda: browser.find_element(By.ID, "out-strength").text == "0.300", "the slider to follow")
    position = float(browser.find_element(By.ID, "ctl-strength").get_attribute("value"))
    assert 700 < position < 900  # 0.3 on the log scale from 0.001 to 1

    # a recording, started and stopped from the page, decodes
    record = browser.find_element(By.ID, "record")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", record)
    record.click()
    until(lambda: state(url)["recording"], "the recording to start")
    frames = state(url)["frames"]
    until(lambda: state(url)["frames"] >= frames + 20, "frames recorded")
    until(lambda: record.text.startswith("■"), "the page to show the recording")
    record.click()
    until(lambda: not state(url)["recording"], "the recording to stop")
    take = until(lambda: glob.glob(str(folder / "rec" / "*.mp4")), "the recording's file")[0]
    until(lambda: decoded_frames(take) >= 10, "the recording to decode")

    # a snapshot, taken and downloaded from the page
    browser.find_element(By.ID, "snapshot").click()
    link = until(lambda: browser.find_elements(By.CSS_SELECTOR, "#snapshots a"), "a snapshot link")[0]
    with urllib.request.urlopen(link.get_attribute("href"), timeout=10) as response:
        png = response.read()
    image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
    assert image is not None and image.shape[0] > 100

    # a refused value is a message on the page, and the show never sees it
    browser.execute_script("send('/dreamcam/preset', ['no-such-look'])")
    until(lambda: "no preset" in browser.find_element(By.ID, "message").text, "the refusal on the page")
    assert state(url)["look"] == "fur"


def send(url: str, address: str, *args) -> bool:
    body = json.dumps({"address": address, "args": list(args)}).encode()
    request = urllib.request.Request(url + "api/control", body, method="POST")
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)["ok"]


def decoded_frames(path: str) -> int:
    import av

    try:
        with av.open(path) as container:
            return sum(1 for _ in container.decode(video=0))
    except (av.error.FFmpegError, OSError):
        return 0

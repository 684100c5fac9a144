"""The page in a real browser (Debian's chromium, driven by selenium through chromedriver) against the
local stack: load it, enter a key, cut a photo out, download the result, parse a costume, run two
tasks, read the usage chart, and see a bad key's error. Screenshots of each step go to
tests/output/browser/."""

from __future__ import annotations

import base64
import re
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from tests.stack_fixtures import credit_key, new_key

SHOTS = Path(__file__).resolve().parents[1] / "output" / "browser"
# the routes the page counts as account calls, not the store's work (app.js READ_ROUTES)
READS = re.compile(r"^/v1/(usage|billing|keys|openapi|tasks/\{)|^/v1\.0/account")
CHROMIUM, CHROMEDRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver

    if not Path(CHROMEDRIVER).exists():
        pytest.fail("chromium-driver is not installed: run `make setup`")
    downloads = tmp_path_factory.mktemp("downloads")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1100"):
        options.add_argument(argument)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=CHROMEDRIVER))
    driver.downloads = downloads
    SHOTS.mkdir(parents=True, exist_ok=True)
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def page(browser, stack, admin):
    """The page loaded, with a key of its own saved in it."""
    from selenium.webdriver.common.by import By

    key = new_key(admin, stack).key
    browser.get(stack.url + "/")
    browser.save_screenshot(str(SHOTS / "01_loaded.png"))
    field = browser.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.ID, "save-key").click()
    wait_for(
        browser, lambda: browser.find_element(By.ID, "key-status").text == "key kept until this tab closes"
    )
    # kept for the session only unless "remember" is ticked: nothing in the browser's lasting storage
    stored = browser.execute_script(
        "return [sessionStorage.getItem('alphacut.key'), localStorage.getItem('alphacut.key')]"
    )
    assert stored == [key, None]
    browser.key = key
    return browser


def wait_for(browser, condition, timeout: float = 120):
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.2).until(lambda _: condition())


def shown_alpha(browser, element_id: str) -> np.ndarray:
    """The alpha of the picture an <img> shows, read back through a canvas inside the page."""
    script = """const img = document.getElementById(arguments[0]);
      const canvas = document.createElement("canvas");
      canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
      const context = canvas.getContext("2d"); context.drawImage(img, 0, 0);
      const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
      let s = ""; for (let i = 3; i < data.length; i += 4) s += String.fromCharCode(data[i]);
      return [canvas.width, canvas.height, btoa(s)];"""
    width, height, alpha = browser.execute_script(script, element_id)
    return np.frombuffer(base64.b64decode(alpha), np.uint8).reshape(height, width)


def choose(browser, select_id: str, value: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    Select(browser.find_element(By.ID, select_id)).select_by_value(value)


def run_cutout(browser, photo: Path, route: str) -> None:
    from selenium.webdriver.common.by import By

    browser.find_element(By.ID, "file").send_keys(str(photo))
    choose(browser, "route", route)
    browser.find_element(By.ID, "run").click()
    wait_for(
        browser,
        lambda: (
            browser.find_element(By.ID, "result-status").text.startswith("Done")
            or browser.find_element(By.ID, "error").is_displayed()
        ),
    )


def test_a_cutout_shows_transparency_where_the_truth_says_background_and_downloads_the_api_png(
    page, stack, eval_dir
):
    from selenium.webdriver.common.by import By

    photo = sorted((eval_dir / "general" / "images").iterdir())[3]
    truth = np.asarray(Image.open(eval_dir / "general" / "gt" / f"{photo.stem}.png").convert("L"))
    run_cutout(page, photo, "cutout")
    page.save_screenshot(str(SHOTS / "02_cutout.png"))
    alpha = shown_alpha(page, "result-image")
    assert alpha.shape == truth.shape
    assert (alpha[truth < 128] < 128).mean() > 0.95  # the background is see-through
    assert (alpha[truth >= 128] >= 128).mean() > 0.7  # and the subject is there
    for fact in ("size", "timings", "charge", "remain"):
        assert page.find_element(By.ID, fact).text
    assert page.find_element(By.ID, "charge").text == "yes"
    assert not page.find_element(By.ID, "download-mask").is_displayed()  # output=image: no mask to offer
    page.find_element(By.ID, "download").click()
    wait_for(page, lambda: any(p.suffix == ".png" for p in page.downloads.iterdir()), 30)
    downloaded = next(p for p in page.downloads.iterdir() if p.suffix == ".png").read_bytes()
    direct = requests.post(
        stack.url + "/v1/cutout",
        headers={"x-api-key": page.key},
        timeout=120,
        files={"image_file": (photo.name, photo.read_bytes(), "image/jpeg")},
        data={"return": "base64", "format": "png"},
    ).json()
    assert downloaded == base64.b64decode(direct["image"]["base64"])


def test_a_brush_stroke_erases_part_of_a_result_undo_takes_it_back_and_neither_is_charged(page, eval_dir):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    photo = sorted((eval_dir / "general" / "images").iterdir())[3]
    run_cutout(page, photo, "cutout")
    before = shown_alpha(page, "result-image")
    rows, columns = np.nonzero(before >= 250)
    y, x = int(np.median(rows)), int(np.median(columns))  # inside the subject
    assert before[y - 4 : y + 4, x - 12 : x + 12].min() >= 200
    page.find_element(By.CSS_SELECTOR, "#touch-up summary").click()
    canvas = page.find_element(By.ID, "brush-canvas")
    wait_for(page, lambda: int(canvas.get_attribute("width")) == before.shape[1], 10)
    scale = canvas.rect["width"] / before.shape[1]  # photo pixels to the canvas's screen pixels
    at = lambda px, py: (
        round((px + 0.5) * scale - canvas.rect["width"] / 2),
        round((py + 0.5) * scale - canvas.rect["height"] / 2),
    )
    page.find_element(By.ID, "brush-erase").click()
    # a user's drag across the subject's middle: real pointer events, in the canvas's screen pixels
    drag = ActionChains(page).move_to_element_with_offset(canvas, *at(x - 16, y)).click_and_hold()
    drag.move_to_element_with_offset(canvas, *at(x, y)).move_to_element_with_offset(canvas, *at(x + 16, y))
    drag.release().perform()

    page.find_element(By.ID, "brush-apply").click()

    wait_for(page, lambda: page.find_element(By.ID, "brush-status").text.startswith("Applied 1 stroke"), 60)
    erased = shown_alpha(page, "result-image")
    assert erased[y - 2 : y + 2, x - 10 : x + 10].max() <= 5  # under the stroke: gone
    brush = 24 / scale  # the brush's default 24 screen pixels, in the photo's
    near = np.zeros(before.shape, bool)
    near[
        max(0, int(y - 3 * brush)) : int(y + 3 * brush),
        max(0, int(x - 16 - 3 * brush)) : int(x + 16 + 3 * brush),
    ] = True
    page.save_screenshot(str(SHOTS / "02_touch_up.png"))
    assert (
        erased[(before >= 250) & ~near] >= 250
    ).mean() > 0.98  # away from the stroke: as the model made it
    assert page.find_element(By.ID, "charge").text == "nothing"
    page.find_element(By.ID, "brush-undo").click()
    page.find_element(By.ID, "brush-apply").click()
    wait_for(page, lambda: page.find_element(By.ID, "brush-status").text.startswith("Applied 0 strokes"), 60)
    assert shown_alpha(page, "result-image")[y - 2 : y + 2, x - 10 : x + 10].min() >= 200
    assert page.find_element(By.ID, "charge").text == "nothing"


def test_the_readme_picture_is_a_store_photo_cut_out_as_shipped(page, eval_dir):
    """docs/page.png is this screenshot (readme_page.png): the first photo of the person set, not a
    chosen one, on the selfie route with the defaults, and it shows no ghost of the background."""
    from alphacut.evaluate import score

    photo = min((eval_dir / "person" / "images").iterdir())
    truth = np.asarray(Image.open(eval_dir / "person" / "gt" / f"{photo.stem}.png").convert("L"))
    run_cutout(page, photo, "selfie")
    page.execute_script("window.scrollTo(0, 0)")  # the page's header and tabs in the picture
    page.save_screenshot(str(SHOTS / "readme_page.png"))
    shown = score(photo.stem, shown_alpha(page, "result-image"), truth)
    assert shown.iou > 0.95 and not shown.ghosted


def test_a_costume_lists_the_classes_found_in_the_legend(page, stack, eval_dir):
    from selenium.webdriver.common.by import By

    photo = min((eval_dir / "clothing" / "images").iterdir())
    run_cutout(page, photo, "costume")
    wait_for(page, lambda: page.find_elements(By.CSS_SELECTOR, "#legend li"))
    time.sleep(0.5)  # the class map is drawn after the legend
    page.save_screenshot(str(SHOTS / "03_costume.png"))
    shown = [item.get_attribute("data-class") for item in page.find_elements(By.CSS_SELECTOR, "#legend li")]
    direct = requests.post(
        stack.url + "/v1/costume",
        headers={"x-api-key": page.key},
        timeout=120,
        files={"image_file": (photo.name, photo.read_bytes(), "image/jpeg")},
    ).json()
    assert shown == [found["class"] for found in direct["classes_found"]] and shown
    assert page.find_elements(By.CSS_SELECTOR, "#garments figure")


def test_a_preset_with_a_shadow_shows_the_marketplace_picture_and_its_check(page, eval_dir):
    from selenium.webdriver.common.by import By

    photo = eval_dir / "general" / "images" / "car-roundabout_00037.jpg"
    choose(page, "shadow", "contact")
    choose(page, "preset", "ebay")
    try:
        run_cutout(page, photo, "cutout")
        page.save_screenshot(str(SHOTS / "05_preset_shadow.png"))
        assert not page.find_element(By.ID, "error").is_displayed()
        assert page.find_element(By.ID, "check").text == "eBay check passes."
        assert page.find_element(By.ID, "size").text.startswith("1600 x 1600")
        assert (shown_alpha(page, "result-image") == 255).all()  # a JPEG on white: nothing see-through
    finally:
        choose(page, "shadow", "none")
        choose(page, "preset", "")


def test_the_model_list_comes_from_the_registry_and_the_result_names_the_model_chosen(page, eval_dir):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    wait_for(page, lambda: len(Select(page.find_element(By.ID, "model")).options) > 1, 30)
    offered = [option.get_attribute("value") for option in Select(page.find_element(By.ID, "model")).options]
    # the default (isnet) and the registry's other models that run on Lambda: u2netp and the
    # operator's tiny (tests/stack_fixtures.py); tinygpu is the GPU endpoint's only
    assert offered == ["", "tiny", "u2netp"]
    photo = sorted((eval_dir / "general" / "images").iterdir())[3]
    choose(page, "model", "u2netp")
    try:
        run_cutout(page, photo, "cutout")
        assert not page.find_element(By.ID, "error").is_displayed()
        assert page.find_element(By.ID, "model-used").text == "u2netp"
    finally:
        choose(page, "model", "")
    run_cutout(page, photo, "cutout")
    assert page.find_element(By.ID, "model-used").text == "isnet"


def test_a_failed_check_shows_each_failed_rule_with_its_measure(page, eval_dir):
    from selenium.webdriver.common.by import By

    photo = eval_dir / "general" / "images" / "car-roundabout_00037.jpg"
    choose(page, "preset", "amazon")
    page.find_element(By.ID, "bg-color").send_keys("#f0f0f0")  # given beside the preset: it wins
    try:
        run_cutout(page, photo, "cutout")
        shown = page.find_element(By.ID, "check").text  # in words, with what was measured
        assert re.fullmatch(r"Amazon check fails: .*\d+ background pixels are not pure white.*\.", shown), (
            shown
        )
        assert "_" not in shown and "[" not in shown, shown
    finally:
        page.find_element(By.ID, "bg-color").clear()
        choose(page, "preset", "")


def drop_files(browser, target_id: str, paths: list[Path]) -> None:
    """Files dropped on an element as a user drags them from a folder: a file input holds them (the
    driver types their paths), then a drop event carries them in its DataTransfer."""
    from selenium.webdriver.common.by import By

    browser.execute_script(
        "const i = document.createElement('input'); i.type = 'file'; i.multiple = true;"
        "i.id = 'drop-source'; document.body.appendChild(i);"
    )
    browser.find_element(By.ID, "drop-source").send_keys("\n".join(str(path) for path in paths))
    browser.execute_script(
        """const source = document.getElementById('drop-source'), transfer = new DataTransfer();
        for (const file of source.files) transfer.items.add(file);
        document.getElementById(arguments[0]).dispatchEvent(
          new DragEvent('drop', {dataTransfer: transfer, bubbles: true, cancelable: true}));
        source.remove();""",
        target_id,
    )


def test_six_photos_dropped_on_tasks_show_their_cost_first_then_each_result_and_its_verdict_in_words(
    page, eval_dir, tmp_path
):
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "tab-tasks").click()
    photos = sorted((eval_dir / "general" / "images").iterdir())[:4]
    hostile = tmp_path / "<img src=x onerror=document.title='injected'>.jpg"
    hostile.write_bytes(photos[0].read_bytes())
    blank = tmp_path / "blank.png"  # no subject: done, not charged, and a result to look at
    Image.new("RGB", (400, 300), (255, 255, 255)).save(blank)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a photo")
    choose(page, "preset", "amazon")
    try:
        drop_files(page, "task-drop", [*photos, hostile, blank, notes])
        wait_for(page, lambda: "6 photos ready" in page.find_element(By.ID, "task-picked").text, 10)
        assert "1 other file left out" in page.find_element(By.ID, "task-picked").text
        assert len(page.find_elements(By.CSS_SELECTOR, "#task-thumbs img")) == 6
        drop_files(page, "task-drop", photos[:2])  # the same photos again: picked once
        wait_for(page, lambda: "2 already picked" in page.find_element(By.ID, "task-picked").text, 10)
        assert "6 photos ready" in page.find_element(By.ID, "task-picked").text
        cost = page.find_element(By.ID, "tasks-cost").text  # before anything starts
        assert cost.startswith("6 photos x ") and "credit" in cost, cost
        page.find_element(By.ID, "submit-tasks").click()
        rows = lambda: page.find_elements(By.CSS_SELECTOR, "#task-table tbody tr")
        wait_for(
            page, lambda: len(rows()) == 6 and all(r.get_attribute("data-state") == "1" for r in rows()), 240
        )
        wait_for(page, lambda: all(r.find_element(By.CSS_SELECTOR, "td.verdict").text for r in rows()), 10)
        page.save_screenshot(str(SHOTS / "04_tasks.png"))
        names = [cell.text for cell in page.find_elements(By.CSS_SELECTOR, "#task-table tbody td.name")]
        assert hostile.name in names and page.title != "injected"
        assert page.find_elements(By.CSS_SELECTOR, "img[onerror]") == []
        shown = page.execute_script(
            "return [...document.querySelectorAll('#task-table td.result img')].map(i => i.naturalWidth)"
        )
        assert len(shown) == 6 and all(width > 0 for width in shown), shown
        verdicts = {
            r.find_element(By.CSS_SELECTOR, "td.name").text: r.find_element(By.CSS_SELECTOR, "td.verdict")
            for r in rows()
        }
        for name, verdict in verdicts.items():
            assert verdict.text.startswith("Amazon check "), (name, verdict.text)
            assert "_" not in verdict.text and "[" not in verdict.text, (name, verdict.text)
        assert "no subject" in verdicts["blank.png"].text
        # a failed rule in red (.bad), a doubt in amber (.doubt): both are "to look at"
        bad = [name for name, v in verdicts.items() if v.find_elements(By.CSS_SELECTOR, ".bad, .doubt")]
        assert "blank.png" in bad and len(bad) < 6
        for name, verdict in verdicts.items():
            if verdict.find_elements(By.CSS_SELECTOR, ".doubt"):
                assert "Look at it before you publish it: " in verdict.text, (name, verdict.text)

        page.find_element(By.ID, "only-bad").click()

        visible = [r.find_element(By.CSS_SELECTOR, "td.name").text for r in rows() if r.is_displayed()]
        assert sorted(visible) == sorted(bad)
        page.save_screenshot(str(SHOTS / "04_tasks_only_bad.png"))
        page.find_element(By.ID, "only-bad").click()

        page.refresh()  # the batch comes back from the service, its names and options from this browser
        page.find_element(By.ID, "tab-tasks").click()

        wait_for(
            page, lambda: len(rows()) >= 6 and all(r.get_attribute("data-state") == "1" for r in rows()), 60
        )
        listed = {r.find_element(By.CSS_SELECTOR, "td.name").text.split("\n")[0]: r for r in rows()[:6]}
        assert set(listed) == set(names), listed.keys()
        assert all(
            "preset amazon" in r.find_element(By.CSS_SELECTOR, "td.name").text for r in listed.values()
        )
        assert "no subject" in listed["blank.png"].find_element(By.CSS_SELECTOR, "td.verdict").text
        assert page.find_element(By.ID, "preset").get_attribute("value") == "amazon"  # the options as left
        page.save_screenshot(str(SHOTS / "04_tasks_after_reload.png"))
    finally:
        if page.find_element(By.ID, "only-bad").is_selected():
            page.find_element(By.ID, "only-bad").click()
        choose(page, "preset", "")


def test_a_photo_refused_when_sent_is_listed_again_after_a_reload_and_not_offered_for_retry(page, tmp_path):
    """A refused photo never became a task, so the service cannot list it: this browser keeps it
    (it vanished after a reload before). A name the service would refuse is sent cleaned, never
    refused for its characters."""
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "tab-tasks").click()
    huge = tmp_path / "poster\tlarge.jpg"  # over API Gateway's 10 MB a request: refused when sent
    huge.write_bytes(b"\xff\xd8" + bytes(11 * 1024 * 1024))
    drop_files(page, "task-drop", [huge])
    wait_for(page, lambda: "1 photo ready" in page.find_element(By.ID, "task-picked").text, 10)
    page.find_element(By.ID, "submit-tasks").click()
    failed = lambda: [
        r for r in page.find_elements(By.CSS_SELECTOR, "#task-table tbody tr") if "failed: " in r.text
    ]
    wait_for(page, lambda: failed() and "413" in failed()[0].text, 60)
    assert "name" not in failed()[0].text  # refused for its size, never for the tab in its name
    page.refresh()
    page.find_element(By.ID, "tab-tasks").click()
    wait_for(page, lambda: any("refused when sent" in r.text for r in failed()), 30)
    assert not page.find_element(By.ID, "retry-failed").is_displayed()  # its photo is not kept


def use_key(browser, key: str) -> None:
    from selenium.webdriver.common.by import By

    field = browser.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key)
    browser.find_element(By.ID, "save-key").click()
    wait_for(
        browser, lambda: browser.execute_script("return sessionStorage.getItem('alphacut.key')") == key, 10
    )


def test_a_batch_past_the_keys_burst_goes_at_its_rate_and_every_photo_becomes_a_task(
    page, stack, admin, eval_dir
):
    from selenium.webdriver.common.by import By

    starter = new_key(admin, stack, "starter")  # 2 calls a second, a burst of 4
    use_key(page, starter.key)
    try:
        page.find_element(By.ID, "tab-tasks").click()
        photos = sorted((eval_dir / "person" / "images").iterdir())[:8]
        page.find_element(By.ID, "task-files").send_keys("\n".join(str(p) for p in photos))
        page.find_element(By.ID, "submit-tasks").click()
        rows = lambda: page.find_elements(By.CSS_SELECTOR, "#task-table tbody tr")
        wait_for(page, lambda: len(rows()) == 8 and all(r.get_attribute("data-task") for r in rows()), 60)
        # none refused for the rate: each waited its turn and became a task
        assert not [
            r for r in rows() if r.find_element(By.CSS_SELECTOR, "td.state").text.startswith("failed")
        ]
    finally:
        use_key(page, page.key)


def test_the_usage_chart_shows_the_numbers_of_v1_usage(page, stack):
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "tab-usage").click()
    wait_for(page, lambda: page.find_elements(By.CSS_SELECTOR, "#usage-chart rect.calls"))
    page.save_screenshot(str(SHOTS / "05_usage.png"))
    drawn = {
        r.get_attribute("data-date"): int(r.get_attribute("data-calls"))
        for r in page.find_elements(By.CSS_SELECTOR, "#usage-chart rect.calls")
    }
    charged = {
        r.get_attribute("data-date"): int(r.get_attribute("data-charged"))
        for r in page.find_elements(By.CSS_SELECTOR, "#usage-chart rect.charged")
    }
    report = requests.get(stack.url + "/v1/usage", headers={"x-api-key": page.key}, timeout=30).json()
    for day in report["days"]:
        # the chart is the store's work: account calls (usage, task polls, the reference) are not drawn,
        # so the page's own /v1/usage calls (this one too) change nothing in it
        work = sum(c["calls"] for route, c in day["routes"].items() if not READS.match(route))
        assert drawn[day["date"]] == work
        assert charged[day["date"]] == day["charged"]
    assert int(page.find_element(By.ID, "usage-charged").text) == report["total"]["charged"]
    kinds = {
        r.get_attribute("data-route"): r.find_elements(By.TAG_NAME, "td")[1].get_attribute("textContent")
        for r in page.find_elements(By.CSS_SELECTOR, "#usage-routes tbody tr")  # under "By route", folded
    }
    assert kinds["/v1/cutout"] == "work"
    assert kinds == {route: "account" if READS.match(route) else "work" for route in kinds}
    # what is left of the quota: the results charged today spend it, the page's own reads never
    today = time.strftime("%Y-%m-%d", time.gmtime())
    charged_today = next((day["charged"] for day in report["days"] if day["date"] == today), 0)
    assert int(page.find_element(By.ID, "quota-left").text) == max(report["daily_quota"] - charged_today, 0)
    # in a store's words first: this month's photos and what is left today
    month = [day for day in report["days"] if day["date"] >= report["days"][-1]["date"][:8] + "01"]
    photos = sum(day["charged"] for day in month)
    summary = page.find_element(By.ID, "usage-summary").text
    assert re.match(
        rf"\w+: {photos} photos? cut out and charged\. Left today: \d+ results? of your plan's", summary
    ), summary


def test_a_mailed_sign_up_link_pasted_into_the_open_tab_shows_its_step(page):
    from selenium.webdriver.common.by import By

    page.execute_script("location.hash = 'signup=not-a-real-token&email=shop%40example.com'")
    try:
        wait_for(page, lambda: page.find_element(By.ID, "signup-confirm").is_displayed(), 10)
        assert page.find_element(By.ID, "signup-for").text == "shop@example.com"
        assert page.find_element(By.ID, "panel-signup").is_displayed()
    finally:
        page.execute_script("history.replaceState(null, '', location.pathname)")
        page.find_element(By.ID, "tab-try").click()


def test_a_key_is_remembered_in_the_browser_only_when_asked(page):
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "remember-key").click()
    page.find_element(By.ID, "save-key").click()
    wait_for(page, lambda: page.find_element(By.ID, "key-status").text == "key saved in this browser")
    assert page.execute_script("return localStorage.getItem('alphacut.key')") == page.key
    page.find_element(By.ID, "remember-key").click()  # and forgotten there once unticked
    page.find_element(By.ID, "save-key").click()
    wait_for(page, lambda: page.find_element(By.ID, "key-status").text == "key kept until this tab closes")
    assert page.execute_script("return localStorage.getItem('alphacut.key')") is None


def test_a_bad_key_shows_the_api_401_message(page, eval_dir):
    from selenium.webdriver.common.by import By

    page.find_element(By.ID, "tab-try").click()
    field = page.find_element(By.ID, "key")
    field.clear()
    page.find_element(By.ID, "save-key").click()
    run_cutout(page, min((eval_dir / "general" / "images").iterdir()), "cutout")
    no_key = page.find_element(By.ID, "error")  # no key at all: the page says so, no call made
    assert no_key.is_displayed() and no_key.text.startswith("No key yet: sign up on the Sign up tab")
    field.send_keys("not-a-key-000000000000000")
    page.find_element(By.ID, "save-key").click()
    run_cutout(page, min((eval_dir / "general" / "images").iterdir()), "cutout")
    error = page.find_element(By.ID, "error")
    page.save_screenshot(str(SHOTS / "06_bad_key.png"))
    assert error.is_displayed() and error.text.startswith("401 invalid_api_key")
    assert "not a valid, enabled API key" in error.text


def test_a_credit_key_sees_its_balance_and_a_spent_one_the_402_with_what_to_do(page, stack, admin, eval_dir):
    from selenium.webdriver.common.by import By

    key = credit_key(admin, stack, "1.5")
    page.find_element(By.ID, "tab-try").click()
    field = page.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key.key)
    page.find_element(By.ID, "save-key").click()
    photo = min((eval_dir / "general" / "images").iterdir())
    run_cutout(page, photo, "cutout")
    wait_for(page, lambda: page.find_element(By.ID, "remain").text == "0.5")
    assert page.find_element(By.ID, "charge").text == "1 credit"
    page.find_element(By.ID, "tab-usage").click()
    wait_for(page, lambda: page.find_element(By.ID, "usage-balance").text == "0.5")
    assert page.find_element(By.ID, "usage-credits").text == "1"
    summary = page.find_element(By.ID, "usage-summary").text  # the month's photos and money, what is left
    assert re.match(
        r"\w+: 1 photo cut out and charged, 1 credit \(\d+\.\d\d [A-Z]{3}\)\. Left: 0\.5 credits", summary
    ), summary
    assert not page.find_element(By.ID, "quota-facts").is_displayed()
    page.save_screenshot(str(SHOTS / "06_credits.png"))
    page.find_element(By.ID, "tab-try").click()
    run_cutout(page, photo, "cutout")
    wait_for(page, lambda: page.find_element(By.ID, "error").text.startswith("402 insufficient_credits"))
    assert "Top the key up" in page.find_element(By.ID, "error").text


def test_the_docs_page_renders_the_reference_with_vendor_routes_under_their_tag(browser, stack):
    from selenium.webdriver.common.by import By

    browser.get(stack.url + "/docs")
    wait_for(browser, lambda: browser.find_elements(By.CSS_SELECTOR, "#tag-vendor-compatible article"))
    browser.save_screenshot(str(SHOTS / "07_docs.png"))
    vendor = {
        a.get_attribute("data-path")
        for a in browser.find_elements(By.CSS_SELECTOR, "#tag-vendor-compatible article")
    }
    native = {
        a.get_attribute("data-path") for a in browser.find_elements(By.CSS_SELECTOR, "#tag-native article")
    }
    assert {"/v1.0/removebg", "/api/cutout/", "/jdai/SelfieSeg"} <= vendor
    assert {"/v1/cutout", "/v1/tasks", "/v1/usage"} <= native


# ---- another web site calling both APIs (CORS) ------------------------------------------------------
SHOP_PAGE = """<!doctype html><html><head><meta charset="utf-8"><title>a shop</title></head><body>
<h1>A shop's own page</h1><img id="removebg" alt=""><img id="cutout" alt=""><pre id="log">...</pre>
<script>
const base = %(base)s, key = %(key)s;
const photo = Uint8Array.from(atob(%(photo)s), c => c.charCodeAt(0));
async function run() {
  const form = new FormData();
  form.append("image_file", new Blob([photo], {type: "image/jpeg"}), "photo.jpg");
  const removebg = await fetch(base + "/v1.0/removebg",
    {method: "POST", headers: {"X-Api-Key": key}, body: form});
  const credits = removebg.headers.get("X-Credits-Charged");
  document.getElementById("removebg").src = URL.createObjectURL(await removebg.blob());
  const cutout = await fetch(base + "/v1/cutout?size=preview", {
    method: "POST", body: photo,
    headers: {"x-api-key": key, "Content-Type": "image/jpeg", "Accept": "image/png",
              "Idempotency-Key": "shop-1"}});
  const width = cutout.headers.get("X-Alphacut-Width");
  document.getElementById("cutout").src = URL.createObjectURL(await cutout.blob());
  document.getElementById("log").textContent = JSON.stringify(
    {removebg: removebg.status, credits: credits, cutout: cutout.status, width: width});
}
run().catch(error => { document.getElementById("log").textContent = "failed: " + error; });
</script></body></html>"""


@pytest.fixture(scope="module")
def shop_site(stack, admin, photo):
    """A page served from another origin (another loopback address and port than the stack's)."""
    import json
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
    from threading import Thread

    from alphacut_dev.local.stack import free_port

    key = new_key(admin, stack).key
    html = SHOP_PAGE % {
        "base": json.dumps(stack.url),
        "key": json.dumps(key),
        "photo": json.dumps(base64.b64encode(photo).decode()),
    }

    class Page(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            body = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    host = "127.0.0.3"
    server = ThreadingHTTPServer((host, free_port(host)), Page)
    Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://{host}:{server.server_address[1]}/"
    server.shutdown()


def test_a_page_on_another_origin_calls_both_apis_with_fetch(browser, shop_site, stack):
    import json

    from selenium.webdriver.common.by import By

    assert not shop_site.startswith(stack.url)
    browser.get(shop_site)
    log = browser.find_element(By.ID, "log")
    wait_for(browser, lambda: log.text.startswith(("{", "failed")))
    browser.save_screenshot(str(SHOTS / "20_other_origin.png"))
    answers = json.loads(log.text) if log.text.startswith("{") else {"failed": log.text}
    assert {k: answers.get(k) for k in ("removebg", "credits", "cutout")} == {
        "removebg": 200,
        "credits": "1",
        "cutout": 200,
    }, answers
    assert int(answers["width"]) > 0  # an exposed header, readable by the page
    for element_id in ("removebg", "cutout"):
        script = "return document.getElementById(arguments[0]).naturalWidth"
        wait_for(browser, lambda: browser.execute_script(script, element_id) > 0)  # noqa: B023
        assert (shown_alpha(browser, element_id) == 0).any()  # a cutout: some background made clear


def key_with_a_card_saved_on_the_page(page, stack, admin):
    """A new credit key at 0, kept on the page, its card saved on the Billing tab through a SetupIntent."""
    from selenium.webdriver.common.by import By

    key = credit_key(admin, stack, "0")
    page.get(stack.url + "/")  # the page again: an earlier test may have left the browser elsewhere
    field = page.find_element(By.ID, "key")
    field.clear()
    field.send_keys(key.key)
    page.find_element(By.ID, "save-key").click()
    page.find_element(By.ID, "tab-billing").click()
    wait_for(
        page, lambda: page.find_elements(By.CSS_SELECTOR, "#card-element input[placeholder='number']"), 30
    )
    wait_for(page, lambda: page.find_element(By.ID, "billing-balance").text == "0", 30)
    for name, value in (("number", "4242424242424242"), ("exp_month", "12"), ("exp_year", "30"),
                        ("cvc", "123"), ("postal_code", "42424")):  # fmt: skip
        page.find_element(By.CSS_SELECTOR, f"#card-element input[placeholder='{name}']").send_keys(value)
    page.find_element(By.ID, "save-card").click()
    wait_for(page, lambda: page.find_element(By.ID, "billing-card").text == "saved", 30)
    return key


def test_the_billing_tab_buys_credits_with_stripe_js_and_shows_the_balance_change(
    page, stack, admin, stripe_on_stack
):
    """Stripe.js here is localstripe's stand-in (its card element is plain inputs): the card saved
    through a SetupIntent, then 40 credits bought with it; the webhook through the gateway adds them."""
    from selenium.webdriver.common.by import By

    key = key_with_a_card_saved_on_the_page(page, stack, admin)
    credits = page.find_element(By.ID, "buy-credits")
    credits.clear()
    credits.send_keys("40")
    page.find_element(By.ID, "buy").click()
    page.find_element(By.ID, "buy-confirm-yes").click()  # Buy says the total; the confirmation pays
    wait_for(page, lambda: page.find_element(By.ID, "billing-status").text == "40 credits added", 60)
    page.save_screenshot(str(SHOTS / "08_billing.png"))
    wait_for(page, lambda: page.find_element(By.ID, "billing-balance").text == "40", 10)
    row = page.find_element(By.CSS_SELECTOR, "#payments tbody tr")
    assert row.find_element(By.CSS_SELECTOR, ".state").text == "paid"
    assert "8.00 USD" in row.text and row.find_element(By.CSS_SELECTOR, ".kind").text == "bought"
    assert (
        requests.get(stack.url + "/v1/billing/payments", headers={"x-api-key": key.key}, timeout=30).json()[
            "balance"
        ]
        == 40
    )


def test_billing_says_the_price_before_a_charge_shows_each_refusal_and_charges_once_for_a_double_click(
    page, stack, admin, stripe_on_stack
):
    """After the card is saved (the test above): the button names what a press charges; a purchase or a
    setting the service refuses is shown on the Billing tab itself; two clicks pay once."""
    from selenium.webdriver.common.by import By

    key = key_with_a_card_saved_on_the_page(page, stack, admin)
    config = requests.get(stack.url + "/v1/billing/config", headers={"x-api-key": key.key}, timeout=30).json()
    credits = page.find_element(By.ID, "buy-credits")
    credits.clear()
    credits.send_keys("40")
    price = f"{40 * float(config['price_per_credit']):.2f} {config['currency'].upper()}"
    assert page.find_element(By.ID, "buy").text == f"Pay {price} with the saved card"
    page.find_element(By.ID, "buy").click()
    page.execute_script("const b = document.getElementById('buy-confirm-yes'); b.click(); b.click();")
    wait_for(page, lambda: page.find_element(By.ID, "billing-status").text == "40 credits added", 60)
    assert len(page.find_elements(By.CSS_SELECTOR, "#payments tbody tr")) == 1  # two clicks, one payment
    credits.clear()
    credits.send_keys(str(max(config["packs"].values()) + 1))  # more than the saved card may pay at once
    page.find_element(By.ID, "buy").click()
    page.find_element(By.ID, "buy-confirm-yes").click()
    error = page.find_element(By.ID, "error")
    wait_for(page, lambda: error.is_displayed() and error.text.startswith("400"), 30)
    page.save_screenshot(str(SHOTS / "09_billing_refused.png"))
    pack, pack_credits = min(config["packs"].items(), key=lambda item: item[1])
    page.find_element(By.ID, "low-balance").clear()
    page.find_element(By.ID, "low-balance").send_keys(str(pack_credits))  # not below the pack: refused
    page.execute_script(f"document.getElementById('auto-top-up').value = '{pack}';")
    page.find_element(By.CSS_SELECTOR, "#billing-settings button[type=submit]").click()
    wait_for(page, lambda: error.is_displayed() and "low_balance" in error.text, 30)
    assert len(page.find_elements(By.CSS_SELECTOR, "#payments tbody tr")) == 1


# ---- a store's first day on the console: sign up, pay, a key, a catalogue (issue 81) ---------------
JOURNEY = SHOTS / "journey"
PHONE = {"width": 390, "height": 844, "deviceScaleFactor": 1, "mobile": False}
TABS = ("start", "try", "tasks", "usage", "billing", "keys", "signup")


def journey_shot(browser, name: str) -> None:
    """The page as it is now at 1280 px and at a phone's 390 px (both kept under JOURNEY)."""
    JOURNEY.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(JOURNEY / f"{name}_1280.png"))
    browser.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        time.sleep(0.3)  # a layout at the new width
        browser.save_screenshot(str(JOURNEY / f"{name}_390.png"))
    finally:
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})


def mailed_signup_link(stack, email: str, timeout: float = 30) -> str:
    from email import message_from_bytes

    folder = Path(stack.extra_env["ALPHACUT_MAIL_DIR"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(folder.glob("*.eml"), reverse=True):
            message = message_from_bytes(path.read_bytes())
            if message["To"] == email:
                text = message.get_payload(decode=True).decode()
                return re.search(r"https?://\S+#signup=\S+", text).group(0)
        time.sleep(0.5)
    raise AssertionError(f"no sign-up mail to {email}")


def fill_card(browser, number: str) -> None:
    from selenium.webdriver.common.by import By

    for name, value in (("number", number), ("exp_month", "12"), ("exp_year", "30"), ("cvc", "123"),
                        ("postal_code", "42424")):  # fmt: skip
        field = browser.find_element(By.CSS_SELECTOR, f"#card-element input[placeholder='{name}']")
        field.clear()
        field.send_keys(value)


def shown_error(browser) -> str:
    from selenium.webdriver.common.by import By

    error = browser.find_element(By.ID, "error")
    return error.text if error.is_displayed() else ""


def portrait_photo(eval_dir, folder: Path) -> Path:
    """A product photo cut to a 2:3 portrait (the slider's hard case)."""
    source = Image.open(sorted((eval_dir / "general" / "images").iterdir())[3]).convert("RGB")
    height = source.height
    width = height * 2 // 3
    left = max((source.width - width) // 2, 0)
    path = folder / "portrait.jpg"
    source.crop((left, 0, left + width, height)).save(path, "JPEG", quality=92)
    return path


@pytest.mark.slow
def test_a_store_signs_up_pays_makes_a_key_and_cuts_a_catalogue_out_on_the_page(
    browser, stack, eval_dir, stripe_on_stack, tmp_path
):
    import uuid
    import zipfile

    from selenium.webdriver.common.by import By

    page, shown = browser, lambda element_id: browser.find_element(By.ID, element_id).text
    page.get(stack.url + "/")
    page.execute_script("sessionStorage.clear(); localStorage.clear();")  # a first visit: no key
    page.get(stack.url + "/")

    # the first view says what the service does, what it costs and how to start
    start = page.find_element(By.ID, "panel-start")
    wait_for(page, lambda: start.is_displayed(), 30)
    assert re.search(r"1 credit = \d+\.\d\d [A-Z]{3}", start.text), start.text
    assert re.search(r"a full-size cutout: 1 credit \(\d+\.\d\d [A-Z]{3}\)", start.text), start.text
    assert "a preview" in start.text and "packs:" in start.text
    assert page.find_element(By.ID, "start-signup").is_displayed()
    journey_shot(page, "01_first_visit")

    # sign up: the mailed link's page makes the key and keeps it, shown once with its id
    page.find_element(By.ID, "start-signup").click()
    email = f"store-{uuid.uuid4().hex[:8]}@shop.example"
    page.find_element(By.ID, "signup-email").send_keys(email)
    page.find_element(By.CSS_SELECTOR, "#signup-form button[type=submit]").click()
    wait_for(page, lambda: shown("signup-status").startswith("a link is on its way"), 30)
    page.get("about:blank")  # the link differs from this page in its fragment only: load it afresh
    page.get(mailed_signup_link(stack, email))
    page.find_element(By.ID, "signup-make").click()
    wait_for(page, lambda: page.find_element(By.ID, "signup-key").is_displayed(), 30)
    key, key_id = shown("signup-value"), shown("signup-key-id")
    assert key.startswith("ac_") and key_id and "Shown once" in shown("signup-key")
    assert shown("key-status") == "key kept until this tab closes" and shown("key-id") == key_id
    journey_shot(page, "02_signed_up")
    store = {"x-api-key": key}

    # Billing, next: the balance and the key id without pasting the key
    page.find_element(By.ID, "signup-buy").click()
    wait_for(page, lambda: shown("billing-balance") == "0", 30)
    assert shown("billing-key-id") == key_id
    assert re.search(r"1 credit = \d+\.\d\d", shown("billing-prices"))

    # a declined card, then a purchase below the minimum: each said on the Billing tab
    wait_for(
        page, lambda: page.find_elements(By.CSS_SELECTOR, "#card-element input[placeholder='number']"), 30
    )
    fill_card(page, "4000000000000002")
    page.find_element(By.ID, "save-card").click()
    wait_for(page, lambda: "The card was not saved" in shown_error(page), 30)
    assert page.find_element(By.ID, "panel-billing").is_displayed()
    journey_shot(page, "03_card_declined")
    config = requests.get(stack.url + "/v1/billing/config", headers=store, timeout=30).json()
    credits = page.find_element(By.ID, "buy-credits")
    credits.clear()
    credits.send_keys(str(config["min_credits"] - 1))
    page.find_element(By.ID, "buy").click()
    wait_for(page, lambda: "below the smallest purchase" in shown_error(page), 10)
    assert not page.find_element(By.ID, "buy-confirm").is_displayed()  # nothing to confirm, nothing paid
    journey_shot(page, "04_below_minimum")

    # a card that works, saved; the total said before anything is paid; the balance goes up
    fill_card(page, "4242424242424242")
    page.find_element(By.ID, "save-card").click()
    wait_for(page, lambda: shown("billing-card") == "saved", 30)
    credits.clear()
    credits.send_keys("40")
    page.find_element(By.ID, "buy").click()
    total = f"{40 * float(config['price_per_credit']):.2f} {config['currency'].upper()}"
    assert shown("buy-confirm-text") == f"Total: {total} for 40 credits, paid with the saved card."
    assert shown("billing-balance") == "0"  # not paid until confirmed
    journey_shot(page, "05_total_before_paying")
    page.find_element(By.ID, "buy-confirm-yes").click()
    wait_for(page, lambda: shown("billing-status") == "40 credits added", 60)
    wait_for(page, lambda: shown("billing-balance") == "40", 10)
    row = page.find_element(By.CSS_SELECTOR, "#payments tbody tr")
    assert row.find_element(By.CSS_SELECTOR, ".kind").text == "bought"
    assert row.find_element(By.CSS_SELECTOR, ".state").text == "paid"
    page.execute_script("document.getElementById('payments').scrollIntoView()")
    journey_shot(page, "06_paid")

    # a second key, made on the Keys tab, shown once; the API lists it
    page.find_element(By.ID, "tab-keys").click()
    wait_for(page, lambda: page.find_elements(By.CSS_SELECTOR, f"#keys-table tr[data-key='{key_id}']"), 30)
    page.find_element(By.ID, "new-key-name").send_keys("storefront plugin")
    page.find_element(By.ID, "new-key-limit").send_keys("5")
    page.find_element(By.CSS_SELECTOR, "#key-make button[type=submit]").click()
    wait_for(page, lambda: page.find_element(By.ID, "key-shown").is_displayed(), 30)
    cards = lambda: page.find_elements(By.CSS_SELECTOR, "#key-shown .shown-once")
    made = cards()[0].find_element(By.CSS_SELECTOR, "code.value").text
    assert made.startswith("ac_") and made != key and "Shown once" in shown("key-shown")
    # a second key in a row: both values stay on screen until each is dismissed
    page.find_element(By.ID, "new-key-name").send_keys("second till")
    page.find_element(By.CSS_SELECTOR, "#key-make button[type=submit]").click()
    wait_for(page, lambda: len(cards()) == 2, 30)
    values = [card.find_element(By.CSS_SELECTOR, "code.value").text for card in cards()]
    assert values[1] == made and values[0].startswith("ac_") and values[0] != made
    cards()[1].find_element(By.CSS_SELECTOR, "button.dismiss").click()
    assert [card.find_element(By.CSS_SELECTOR, "code.value").text for card in cards()] == values[:1]
    listed = requests.get(stack.url + "/v1/keys", headers=store, timeout=30).json()["keys"]
    plugin = next(k for k in listed if k["name"] == "storefront plugin")
    assert plugin["scopes"] == ["images"] and plugin["daily_credit_limit"] == 5
    wait_for(
        page,
        lambda: page.find_elements(By.CSS_SELECTOR, f"#keys-table tr[data-key='{plugin['key_id']}']"),
        10,
    )
    journey_shot(page, "07_keys")

    # three photos as tasks: "3 of 3", one zip under the photos' own names
    page.find_element(By.ID, "tab-tasks").click()
    assert page.find_element(By.ID, "preset").is_displayed()  # Try it's options, here too
    photos = sorted((eval_dir / "general" / "images").iterdir())[:3]
    page.find_element(By.ID, "task-files").send_keys("\n".join(str(p) for p in photos))
    page.find_element(By.ID, "submit-tasks").click()
    wait_for(page, lambda: shown("tasks-summary").startswith("3 of 3 done"), 180)  # and any to look at
    page.find_element(By.ID, "download-zip").click()
    archive = page.downloads / "cutouts.zip"
    wait_for(page, lambda: archive.exists() and archive.stat().st_size > 0, 30)
    time.sleep(0.5)  # the download is renamed into place once written
    with zipfile.ZipFile(archive) as opened:
        assert opened.testzip() is None
        assert sorted(opened.namelist()) == sorted(f"{p.stem}.png" for p in photos)
        assert all(opened.read(name).startswith(b"\x89PNG") for name in opened.namelist())
    links = [
        a.get_attribute("download") for a in page.find_elements(By.CSS_SELECTOR, "#task-table td.result a")
    ]
    assert sorted(links) == sorted(f"{p.stem}.png" for p in photos)
    journey_shot(page, "08_tasks")

    # a broken file's task says why it failed
    broken = tmp_path / "broken-photo.jpg"
    broken.write_bytes(b"\xff\xd8\xff not a picture at all" * 20)
    page.find_element(By.ID, "task-files").send_keys(str(broken))
    page.find_element(By.ID, "submit-tasks").click()
    wait_for(page, lambda: shown("tasks-summary") == "0 of 1 done, 1 failed", 120)
    state = page.find_element(By.CSS_SELECTOR, "#task-table tbody td.state").text
    assert state.startswith("failed: ") and len(state) > len("failed: ") + 10, state
    assert page.find_element(By.ID, "retry-failed").is_displayed()
    journey_shot(page, "09_broken_file")

    # a portrait cutout: before and after the same rendered size, over each other
    page.find_element(By.ID, "tab-try").click()
    run_cutout(page, portrait_photo(eval_dir, tmp_path), "cutout")
    assert page.find_element(By.ID, "result-status").text.startswith("Done"), shown_error(page)
    wait_for(
        page, lambda: page.execute_script("return document.getElementById('after').naturalHeight") > 0, 10
    )
    boxes = page.execute_script(
        "return ['before', 'after'].map(id => document.getElementById(id).getBoundingClientRect())"
        ".map(r => [r.left, r.top, r.width, r.height]);"
    )
    assert boxes[0] == pytest.approx(boxes[1], abs=0.5) and boxes[0][3] > boxes[0][2], boxes
    journey_shot(page, "10_portrait")

    # at a phone's width no tab scrolls sideways
    page.execute_cdp_cmd("Emulation.setDeviceMetricsOverride", PHONE)
    try:
        for tab in TABS:
            page.find_element(By.ID, f"tab-{tab}").click()
            time.sleep(0.3)
            fits = page.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
            page.save_screenshot(str(JOURNEY / f"11_phone_{tab}_390.png"))
            assert fits[0] <= fits[1], (tab, fits)
            # nor any table: each row's cells (a task's state and result, a payment's, a key's)
            # lie within the viewport, each named by its column
            outside = page.execute_script(
                "return [...document.querySelectorAll('.panel:not([hidden]) .table-wrap tbody td')]"
                ".filter(c => c.offsetParent && (c.getBoundingClientRect().right > innerWidth + 0.5"
                " || (c.textContent.trim() && !c.dataset.label)))"
                ".map(c => c.className + ':' + c.textContent.slice(0, 30))"
            )
            assert outside == [], (tab, outside)
    finally:
        page.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

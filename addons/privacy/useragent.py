"""What a sign-in history keeps of a User-Agent header: a browser family and a device type, nothing else.

The header is read once, when someone signs in, and never stored: only the two words this module
gives, each from a fixed list (:data:`FAMILIES`, :data:`DEVICES`), go into the database. So a
hostile header (huge, control characters, markup) can reach neither the table nor a page.

Rules, in order (the first that matches wins), from the tokens browsers have sent for years:

* family: browsers built on Chromium name themselves before their ``Chrome/`` token (Edge ``Edg/``,
  Opera ``OPR/``, Samsung ``SamsungBrowser/``, Yandex ``YaBrowser/``, Vivaldi ``Vivaldi/``), so
  they are looked for first; then Firefox, Chromium, Chrome (iOS: ``CriOS/``), Safari (``Safari/``
  with ``Version/`` and no Chromium token), Internet Explorer (``MSIE``, ``Trident/``). Scripts and
  command-line clients (curl, python-requests ...) are ``tool``; crawlers are ``bot``.
* device: ``iPad`` and Android without ``Mobile`` (the convention Chrome and Firefox follow on
  tablets) are tablets; ``iPhone``, ``Mobi`` and Android with ``Mobile`` are phones; TVs and
  game consoles are ``other``; Windows, macOS, Linux and ChromeOS are desktops. An iPad that asks
  for desktop sites says ``Macintosh``: it counts as a desktop, as it asked to.
"""

from __future__ import annotations

import re

# Stored keys (short, ASCII) and what pages call them; brand names are not translated.
FAMILIES = {
    "chrome": "Chrome", "chromium": "Chromium", "edge": "Edge", "firefox": "Firefox", "safari": "Safari",
    "opera": "Opera", "samsung": "Samsung Internet", "yandex": "Yandex Browser", "vivaldi": "Vivaldi",
    "ie": "Internet Explorer", "tool": "", "bot": "", "other": "", "unknown": "",
}
DEVICES = ("desktop", "phone", "tablet", "other", "unknown")

MAX_READ = 512  # real User-Agent headers are a few hundred characters; nothing past this is looked at

_BROWSERS = (  # (family, pattern); the first match wins
    ("edge", re.compile(r"\b(?:Edg|Edge|EdgA|EdgiOS)/\d")),
    ("opera", re.compile(r"\b(?:OPR|OPiOS|OPT)/\d|\bOpera\b")),
    ("samsung", re.compile(r"\bSamsungBrowser/\d")),
    ("yandex", re.compile(r"\bYaBrowser/\d")),
    ("vivaldi", re.compile(r"\bVivaldi/\d")),
    ("firefox", re.compile(r"\b(?:Firefox|FxiOS)/\d")),
    ("chromium", re.compile(r"\bChromium/\d")),
    ("chrome", re.compile(r"\b(?:Chrome|CriOS|HeadlessChrome)/\d")),
    ("safari", re.compile(r"\bVersion/\d[\d.]*.*\bSafari/\d|\bAppleWebKit/\d.*\b(?:iPhone|iPad|iPod)\b")),
    ("ie", re.compile(r"\bMSIE \d|\bTrident/\d")),
)
_BOT = re.compile(r"(?i)[a-z](?:bot|crawler|spider)\b|\bslurp\b|facebookexternalhit|\bbingpreview\b")
_TOOL = re.compile(r"(?i)^(?:curl|wget|python-requests|python-urllib|python-httpx|aiohttp|httpie|okhttp|"
                   r"go-http-client|postmanruntime|insomnia|axios|node-fetch|undici|java|apache-httpclient|"
                   r"libwww-perl|guzzlehttp|ruby|dart)\b")
_OTHER_DEVICE = re.compile(r"(?i)smart-?tv|\btizen\b.*\btv\b|\bweb0s\b|\bhbbtv\b|\bcrkey\b|\bplaystation\b|"
                           r"\bxbox\b|\bnintendo\b|\bappletv\b|\broku\b|\baft[a-z]\b")
_TABLET = re.compile(r"\biPad\b|\bTablet\b|\bKindle\b|\bSilk/")
_PHONE = re.compile(r"\biPhone\b|\biPod\b|\bMobi|\bWindows Phone\b|\bKAIOS\b|\bBlackBerry\b|\bBB10\b", re.I)
_DESKTOP = re.compile(r"\bWindows NT\b|\bMacintosh\b|\bMac OS X\b|\bX11\b|\bLinux\b|\bCrOS\b|\bFreeBSD\b")


def parse(user_agent: str | None) -> tuple[str, str]:
    """``(family, device)``: a key of :data:`FAMILIES` and one of :data:`DEVICES`."""
    ua = (user_agent or "")[:MAX_READ]
    ua = "".join(c if c.isprintable() else " " for c in ua).strip()
    if not ua:
        return "unknown", "unknown"
    if _BOT.search(ua):
        return "bot", "other"
    if _TOOL.match(ua):
        return "tool", "other"
    family = next((name for name, pattern in _BROWSERS if pattern.search(ua)), "other")
    return family, _device(ua)


def _device(ua: str) -> str:
    if _OTHER_DEVICE.search(ua):
        return "other"
    if "Android" in ua:
        if _TABLET.search(ua):
            return "tablet"
        return "phone" if "Mobile" in ua or _PHONE.search(ua) else "tablet"
    if _TABLET.search(ua):
        return "tablet"
    if _PHONE.search(ua):
        return "phone"
    if _DESKTOP.search(ua):
        return "desktop"
    return "unknown"

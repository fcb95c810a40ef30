"""Slack's mrkdwn as a terminal shows it: emphasis as ANSI styles (or dropped, for a pipe or
a file), emoji shortcodes as the characters Slack shows."""

from __future__ import annotations

import re
from collections.abc import Callable

EMOJI = {
    "white_check_mark": "✅",
    "heavy_check_mark": "✔️",
    "x": "❌",
    "warning": "⚠️",
    "red_circle": "🔴",
    "large_green_circle": "🟢",
    "large_yellow_circle": "🟡",
    "large_blue_circle": "🔵",
    "white_circle": "⚪",
    "mag": "🔍",
    "arrows_counterclockwise": "🔄",
    "repeat": "🔁",
    "wastebasket": "🗑️",
    "rotating_light": "🚨",
    "receipt": "🧾",
    "point_right": "👉",
    "no_entry_sign": "🚫",
    "no_entry": "⛔",
    "money_with_wings": "💸",
    "moneybag": "💰",
    "heavy_dollar_sign": "💲",
    "bank": "🏦",
    "credit_card": "💳",
    "link": "🔗",
    "information_source": "\u2139\ufe0f",
    "hourglass_flowing_sand": "⏳",
    "hourglass": "⌛",
    "stopwatch": "⏱️",
    "clock1": "🕐",
    "calendar": "📆",
    "date": "📅",
    "heavy_minus_sign": "\u2796",
    "heavy_plus_sign": "\u2795",
    "grey_question": "❔",
    "question": "❓",
    "grey_exclamation": "❕",
    "exclamation": "❗",
    "bulb": "💡",
    "memo": "📝",
    "page_facing_up": "📄",
    "bar_chart": "📊",
    "chart_with_upwards_trend": "📈",
    "chart_with_downwards_trend": "📉",
    "inbox_tray": "📥",
    "outbox_tray": "📤",
    "package": "📦",
    "lock": "🔒",
    "unlock": "🔓",
    "key": "🔑",
    "bell": "🔔",
    "no_bell": "🔕",
    "construction": "🚧",
    "tada": "🎉",
    "eyes": "👀",
    "+1": "👍",
    "thumbsup": "👍",
    "-1": "👎",
    "thumbsdown": "👎",
    "wave": "👋",
    "robot_face": "🤖",
    "gear": "⚙️",
    "wrench": "🔧",
    "hammer_and_wrench": "🛠️",
    "zap": "⚡",
    "fire": "🔥",
    "sparkles": "✨",
    "star": "⭐",
    "arrow_right": "➡️",
    "arrow_left": "⬅️",
    "arrow_up": "⬆️",
    "arrow_down": "⬇️",
    "leftwards_arrow_with_hook": "↩️",
    "heavy_exclamation_mark": "❗",
    "thinking_face": "🤔",
    "ok": "🆗",
    "new": "🆕",
    "sos": "🆘",
    "pushpin": "📌",
    "round_pushpin": "📍",
    "paperclip": "📎",
    "clipboard": "📋",
    "file_folder": "📁",
    "email": "📧",
    "envelope": "✉️",
    "telephone_receiver": "📞",
    "busts_in_silhouette": "👥",
    "bust_in_silhouette": "👤",
    "handshake": "🤝",
    "scales": "⚖️",
    "shield": "🛡️",
    "spiral_calendar_pad": "🗓️",
    "broom": "🧹",
    "dart": "🎯",
    "checkered_flag": "🏁",
    "stop_sign": "🛑",
    "large_orange_circle": "🟠",
    "black_circle": "⚫",
}
"""Shortcode -> character, for the ones the bot uses and the common ones; others stay as
typed (``:custom_emoji:``), as Slack shows an emoji it does not know."""

BOLD, ITALIC, STRIKE, RESET = "\x1b[1m", "\x1b[3m", "\x1b[9m", "\x1b[0m"

_EMOJI = re.compile(r":([a-z0-9_+-]+):")
_BOLD = re.compile(r"(?<![\w*])\*(?=\S)([^*\n]+?)(?<=\S)\*(?![\w*])")
_ITALIC = re.compile(r"(?<![\w_])_(?=\S)([^_\n]+?)(?<=\S)_(?![\w_])")
_STRIKE = re.compile(r"(?<![\w~])~(?=\S)([^~\n]+?)(?<=\S)~(?![\w~])")
_CODE = re.compile(r"`([^`\n]+)`")


def emoji(text: str) -> str:
    """``:white_check_mark:`` as ✅; shortcodes it does not know are left as they are."""
    return _EMOJI.sub(lambda m: EMOJI.get(m.group(1), m.group(0)), text)


def styled(text: str, *, ansi: bool) -> str:
    """``*bold*``, ``_italic_`` and ``~strike~`` as ANSI styles (``ansi``) or as plain
    words; inline ``code`` without its backticks."""

    def wrap(style: str) -> Callable[[re.Match[str]], str]:
        return lambda m: f"{style}{m.group(1)}{RESET}" if ansi else m.group(1)

    text = _CODE.sub(lambda m: m.group(1), text)
    for pattern, style in ((_BOLD, BOLD), (_ITALIC, ITALIC), (_STRIKE, STRIKE)):
        text = pattern.sub(wrap(style), text)
    return text

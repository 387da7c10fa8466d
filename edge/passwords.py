"""Refuse the passwords a guesser tries first.

The login throttle allows a few guesses per address and hour; that is harmless against a password nobody would
guess, and fatal against "password1". This short built-in list covers the passwords of eight or more characters
that lead every published list of leaked passwords, the same words with digits or punctuation appended
("Password123!"), keyboard walks and repeated characters, and the obvious words for this device.
"""

from __future__ import annotations

import re

# Lower-case words that are refused alone or followed by digits and punctuation ("sunshine", "Sunshine2024!").
_COMMON_WORDS = frozenset("""
password passw0rd p@ssword p@ssw0rd passwort motdepasse contrasena wachtwoord salasana haslo
qwerty qwertz azerty qwertyuiop asdfghjkl zxcvbnm qazwsx qweasd 1qaz2wsx zaq12wsx
iloveyou letmein welcome admin administrator root changeme default secret master login
abc abcd abcdef abcdefgh abc123 trustno1 whatever starwars superman batman spiderman pokemon
dragon monkey sunshine princess football baseball basketball soccer hockey michael jennifer
shadow jordan hunter ranger buster thomas tigger charlie robert daniel jessica ashley
freedom liverpool chelsea arsenal computer internet samsung google iphone summer winter
flower lovely hello hellohello loveme friends family baby babygirl angel
door frontdoor opendoor opensesame sesame edgeface edge-face raspberry raspberrypi pi
raspbian facedoor doorlock unlock
""".split())

# Whole passwords (lower case) that are not a word plus digits.
_COMMON_WHOLE = frozenset("""
12345678 123456789 1234567890 0123456789 987654321 9876543210 11111111 00000000 12341234
87654321 11223344 12121212 88888888 99999999 123123123 147258369 741852963 159753456
1q2w3e4r 1q2w3e4r5t 1qaz2wsx3edc q1w2e3r4 q1w2e3r4t5 a1b2c3d4 aa123456 qwe12345
iloveyou1 password1 password12 password123 letmein123 welcome1 welcome123 admin123 admin1234
""".split())

_TRAILER = re.compile(r"[\d\W_]+$")


def is_common(password: str) -> bool:
    """True when ``password`` is on the built-in list (case-insensitive, digits and symbols at the end ignored)."""
    lowered = password.strip().lower()
    if lowered in _COMMON_WHOLE or len(set(lowered)) <= 2:         # also "aaaaaaaa", "abababab"
        return True
    return _TRAILER.sub("", lowered) in _COMMON_WORDS

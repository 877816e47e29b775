# -*- coding: utf-8 -*-
# Copyright: muejam.dbops contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""HTTP GETs whose failures are results: a check that cannot reach its URL reports why, it does not raise."""

from __future__ import annotations

import json

from ansible.module_utils.six.moves.urllib.error import HTTPError
from ansible.module_utils.urls import open_url


def fetch(url: str, timeout: float) -> tuple:
    """(status code or None, body, error or None)."""
    try:
        answer = open_url(url, timeout=timeout, validate_certs=True)
        return answer.getcode(), answer.read().decode("utf-8", "replace"), None
    except HTTPError as exc:
        return exc.code, exc.read().decode("utf-8", "replace"), None
    except Exception as exc:  # any failure to get an answer is the check's result, not the task's
        return None, "", str(getattr(exc, "reason", exc))


def parse(body: str):
    try:
        return json.loads(body)
    except ValueError:
        return None


def fetch_json(url: str, timeout: float) -> tuple:
    """(parsed JSON, None) or (None, the reason in words)."""
    code, body, error = fetch(url, timeout)
    if error is not None:
        return None, "cannot reach %s: %s" % (url, error)
    if code != 200:
        return None, "HTTP %s from %s: %s" % (code, url, " ".join(body.split())[:200])
    document = parse(body)
    if document is None:
        return None, "%s did not answer JSON" % url
    return document, None

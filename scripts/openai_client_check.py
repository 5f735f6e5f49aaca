#!/usr/bin/env python3
"""Calls a running `warden serve` with the official `openai` package, unchanged.

Usage: scripts/openai_client_check.py BASE_URL   (e.g. http://127.0.0.1:8080/v1)

Exits non-zero with a message on the first mismatch. scripts/serve_smoke.sh runs it.
"""
import sys

import openai
from openai import OpenAI

OPENAI_NAMES = ["sexual", "hate", "violence", "harassment", "self-harm",
                "sexual/minors", "hate/threatening", "violence/graphic"]


def check(cond, msg):
    if not cond:
        print(f"FAIL: {msg}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {msg}")


def main():
    base = sys.argv[1]
    client = OpenAI(base_url=base, api_key="sk-unused-by-warden", max_retries=0)

    r = client.moderations.create(input="I am going to kill you and your whole family tonight")
    check(r.id.startswith("modr-"), f"id {r.id}")
    check(len(r.results) == 1, "one result for a string input")
    res = r.results[0]
    # The typed accessors of the official client work.
    check(isinstance(res.flagged, bool), f"flagged is a bool ({res.flagged})")
    check(isinstance(res.categories.violence, bool), "categories.violence is a bool")
    check(isinstance(res.category_scores.violence, float), "category_scores.violence is a float")
    check(isinstance(res.category_scores.self_harm, float), "category_scores.self_harm (alias self-harm) is a float")
    check(isinstance(res.categories.hate_threatening, bool), "categories.hate_threatening (alias hate/threatening)")
    dumped = res.model_dump(by_alias=True)
    for name in OPENAI_NAMES:
        check(name in dumped["category_scores"], f"category_scores has {name!r}")
    top = max(((k, v) for k, v in dumped["category_scores"].items() if v is not None), key=lambda kv: kv[1])
    check(res.flagged, f"a death threat is flagged (top category {top[0]} at {top[1]:.3f})")

    texts = ["What a lovely day for a walk in the park.",
             "I will find you and hurt you",
             "Thanks for your help with the homework!"]
    r = client.moderations.create(input=texts, model="omni-moderation-latest")
    check(len(r.results) == 3, "three results for three inputs")
    check(r.results[1].category_scores.violence > r.results[0].category_scores.violence,
          "results are in input order")

    # Policy choice through the model field; unknown names are a 400 the client raises.
    r = client.moderations.create(input="hello there", model="default")
    check(r.model, f"model reported ({r.model})")
    try:
        client.moderations.create(input="hello", model="no-such-policy")
        check(False, "unknown policy must fail")
    except openai.BadRequestError as e:
        check(e.status_code == 400 and "unknown_policy" in str(e.body), f"unknown policy -> 400 unknown_policy")
    try:
        client.moderations.create(input=[])
        check(False, "empty input must fail")
    except openai.BadRequestError as e:
        check(e.status_code == 400, "empty input -> 400")
    print("openai client: all checks passed")


if __name__ == "__main__":
    main()

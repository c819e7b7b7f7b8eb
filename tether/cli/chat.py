"""``tether chat``: one chat turn with a model's own chat template, optionally with tools (OpenAI tool dicts)
and a forced ``--tool-choice``; tool calls in the answer are parsed and printed as JSON."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from tether.cli.common import add_engine_args, engine_kwargs


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("chat", help="one chat turn (the model's chat template), optionally with tools")
    p.add_argument("--message", required=True, help="the user message")
    p.add_argument("--system", default=None, help="a system message (default: the template's own)")
    p.add_argument("--tools", default=None, help="JSON file: a list of OpenAI tool definitions")
    p.add_argument(
        "--tool-choice",
        default=None,
        help='"auto" (default with --tools), "none", "required", or a tool name (that tool is called)',
    )
    p.add_argument("--max-tokens", type=int, default=128)
    p.add_argument("--temperature", type=float, default=0.0)
    p.add_argument("--json", action="store_true", help="print one JSON object")
    add_engine_args(p)
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tether.runtime.engine.chat import ToolCallParseError, parse_tool_calls
    from tether.runtime.engine.errors import EngineError
    from tether.runtime.engine.llm import LLM
    from tether.runtime.engine.models.sources import first_load_notice
    from tether.runtime.engine.sampling_params import SamplingParams

    messages = [{"role": "system", "content": args.system}] if args.system else []
    messages.append({"role": "user", "content": args.message})
    try:
        tools = json.loads(Path(args.tools).read_text()) if args.tools else None
        choice = args.tool_choice
        if choice not in (None, "auto", "none", "required"):
            choice = {"type": "function", "function": {"name": choice}}
        notice = first_load_notice(args.model)
        if notice is not None:
            print(f"tether chat: {notice}", file=sys.stderr)
        llm = LLM(args.model, **engine_kwargs(args))
        params = SamplingParams(max_tokens=args.max_tokens, temperature=args.temperature)
        out = llm.chat(messages, params, tools=tools, tool_choice=choice)[0]
    except (EngineError, OSError, ValueError) as exc:
        print(f"tether chat: {exc}", file=sys.stderr)
        return 2
    completion = out.outputs[0]
    try:
        parsed = parse_tool_calls(completion.text, tools) if tools else None
    except ToolCallParseError as exc:
        print(f"tether chat: the answer's tool call does not parse: {exc}", file=sys.stderr)
        parsed = None
    calls = [
        {"id": c.id, "name": c.name, "arguments": json.loads(c.arguments)}
        for c in (parsed.tool_calls if parsed else ())
    ]
    if args.json:
        doc = {
            "model": args.model,
            "content": parsed.content if parsed else completion.text,
            "tool_calls": calls,
            "finish_reason": completion.finish_reason,
            "prompt_tokens": len(out.prompt_token_ids),
            "completion_tokens": len(completion.token_ids),
        }
        print(json.dumps(doc, ensure_ascii=False))
        return 0
    content = parsed.content if parsed else completion.text
    if content:
        print(content)
    for call in calls:
        print(f"tool call {call['name']}({json.dumps(call['arguments'], ensure_ascii=False)})")
    print(f"[finish_reason={completion.finish_reason}, {len(completion.token_ids)} tokens]")
    return 0

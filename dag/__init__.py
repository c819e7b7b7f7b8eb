"""DAG compiler: agent programs as graphs of dependent LLM calls and tool calls (see the DAG issue)."""

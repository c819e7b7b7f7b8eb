"""Thin adapters that put agents built with other frameworks on ``tether serve`` as programs (docs/agents.md,
"Integrations"):

- ``tether.integrations.langgraph``: a langchain-openai ``ChatOpenAI`` whose calls name the LangGraph thread as
  their program, and a callback that ends the program when the graph run finishes;
- ``tether.integrations.openai_agents``: an OpenAI Agents SDK ``ModelProvider`` whose model calls name one
  program, and run hooks that end it when the run ends;
- ``tether.integrations.programs``: what both share, the client side of a program (its ``tether`` object per
  call, and its end).

Each adapter imports its framework, which this package does not depend on; nothing else in ``tether`` imports
this package (``.importlinter``).
"""

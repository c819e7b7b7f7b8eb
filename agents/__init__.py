"""Front-ends: decorator agents and the LLMCompiler-style planner (built on dag/ and runtime/)."""

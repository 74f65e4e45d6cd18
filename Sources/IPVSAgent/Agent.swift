// The AgentX subagent (issue: the subagent).

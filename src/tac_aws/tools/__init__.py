"""Tools for AWS agent frameworks, at ``twilio-agent-connect-aws``'s import paths."""

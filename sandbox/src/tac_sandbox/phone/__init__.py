"""The sandbox's phone: everyone who calls or texts the app under test.

- :mod:`~tac_sandbox.phone.customers`: simulated customers on SMS, WhatsApp, RCS and Chat.
- :mod:`~tac_sandbox.phone.caller`: the ConversationRelay caller (``Caller``), Twilio's side
  of one call: the TwiML request, the signed WebSocket, the action callback.
- :mod:`~tac_sandbox.phone.control`: calls the sandbox runs itself (inbound and Calls API),
  their status callbacks, and the control API that drives them; :mod:`~.call` is the HTTP
  handle (``VoiceCall``) on one of them.
- :mod:`~tac_sandbox.phone.stream_caller`: the Media Streams caller (``StreamCaller``): real-pace
  μ-law audio out, the app's audio played back, marks echoed, ``clear`` honoured;
  :mod:`~.stream_control` answers the app's outbound Media Streams calls with it and
  :mod:`~.stream_twiml` reads ``<Connect><Stream>``.
- :mod:`~tac_sandbox.phone.orchestrator`: what the Orchestrator records for a call.
- :mod:`~tac_sandbox.phone.edge`: Twilio's TLS edge in front of the app.
"""

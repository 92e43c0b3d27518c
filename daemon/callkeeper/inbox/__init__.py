"""The missed-call inbox: every missed or abandoned call still to be worked, one item per caller and line,
its handling, callbacks, voicemail audio and the daily report."""

"""The missed-call inbox in the browser (sign-in, inbox, call detail, reports), served by the daemon."""

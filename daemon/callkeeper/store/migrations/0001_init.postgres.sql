CREATE TABLE calls (
    id TEXT PRIMARY KEY,
    direction TEXT NOT NULL,
    line TEXT,
    caller TEXT NOT NULL,
    dialed TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    ended_at TIMESTAMPTZ,
    outcome TEXT,
    reason TEXT,
    short BOOLEAN NOT NULL,
    answered_by TEXT,
    end_observed BOOLEAN NOT NULL,
    host TEXT NOT NULL,
    record JSONB NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX calls_started_at ON calls (started_at);
CREATE INDEX calls_line_started_at ON calls (line, started_at);
CREATE INDEX calls_outcome_started_at ON calls (outcome, started_at);
CREATE INDEX calls_open ON calls (host) WHERE ended_at IS NULL;

CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    idempotency_key TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL CHECK (kind IN ('sms', 'webhook')),
    call_id TEXT,
    line TEXT,
    destination TEXT NOT NULL,
    payload JSONB NOT NULL,
    status TEXT NOT NULL CHECK (status IN ('pending', 'sending', 'sent', 'failed', 'held', 'cancelled')),
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ NOT NULL,
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    provider_id TEXT,
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    sent_at TIMESTAMPTZ
);
CREATE INDEX outbox_due ON outbox (status, next_attempt_at, created_at, id);
CREATE INDEX outbox_lease ON outbox (status, claimed_until) WHERE status = 'sending';
CREATE INDEX outbox_call ON outbox (call_id, created_at);
CREATE INDEX outbox_texts ON outbox (kind, line, created_at);

CREATE TABLE opt_outs (
    number TEXT PRIMARY KEY,
    opted_out BOOLEAN NOT NULL,
    source TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

CREATE TABLE text_windows (
    number TEXT NOT NULL,
    line TEXT NOT NULL,
    reserved_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (number, line)
);

CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);

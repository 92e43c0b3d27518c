-- The missed-call inbox: one item per caller (the number outside the PBX) and line for every call not
-- answered, kept up to date in the transaction that stores a call's final record.
CREATE TABLE inbox_items (
    id TEXT PRIMARY KEY,
    caller TEXT NOT NULL,
    line TEXT NOT NULL,
    direction TEXT NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('open', 'handled')),
    call_id TEXT NOT NULL,
    call_ids TEXT NOT NULL,
    outcome TEXT NOT NULL,
    reason TEXT NOT NULL,
    short BOOLEAN NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    waited_seconds DOUBLE PRECISION NOT NULL,
    attempts INTEGER NOT NULL,
    shown_calls INTEGER NOT NULL,
    short_abandons INTEGER NOT NULL,
    ignored_calls INTEGER NOT NULL,
    voicemail_call_id TEXT,
    voicemail_seconds INTEGER,
    voicemail_mailbox TEXT,
    text_call_id TEXT,
    handled_by TEXT,
    handled_at TIMESTAMPTZ,
    note TEXT,
    resolved_by TEXT,
    called_back_at TIMESTAMPTZ,
    version BIGINT NOT NULL
);
CREATE UNIQUE INDEX inbox_open_caller_line ON inbox_items (caller, line) WHERE state = 'open';
CREATE INDEX inbox_state_started_at ON inbox_items (state, started_at);
CREATE INDEX inbox_items_version ON inbox_items (version);

-- Every call of an item: the caller's missed calls and the callbacks (linked when placed, `counted` once
-- their final record is in). `inbox_items.call_ids` lists the same ids, in the order they joined.
CREATE TABLE inbox_calls (
    call_id TEXT PRIMARY KEY,
    item_id TEXT NOT NULL REFERENCES inbox_items (id),
    counted BOOLEAN NOT NULL,
    callback_by TEXT,
    voicemail_seconds INTEGER
);
CREATE INDEX inbox_calls_item ON inbox_calls (item_id);

-- Grows with every change of the inbox, on every host: what live pages poll.
CREATE TABLE inbox_version (
    only_row BOOLEAN PRIMARY KEY CHECK (only_row),
    version BIGINT NOT NULL
);
INSERT INTO inbox_version (only_row, version) VALUES (TRUE, 0);

CREATE INDEX calls_caller_started_at ON calls (caller, started_at);
CREATE INDEX calls_dialed_started_at ON calls (dialed, started_at);

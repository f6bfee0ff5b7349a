-- 6: two versions kept by the database itself, so that no writer can forget them.
--
-- text_version goes up whenever a text the indexes hold changes (an account's name,
-- industry or profile; a need's text), bumped by the database itself so no writer can
-- forget. A loaded index whose manifest carries the current text_version is fresh
-- without comparing 400k hashes, so writes that touch no indexed text (a request
-- approved, a risk score) no longer make every process reload its indexes.
INSERT INTO meta (key, value) VALUES ('text_version', '0');

CREATE TRIGGER accounts_text_insert AFTER INSERT ON accounts
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'text_version';
END;
CREATE TRIGGER accounts_text_delete AFTER DELETE ON accounts
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'text_version';
END;
CREATE TRIGGER accounts_text_update AFTER UPDATE OF id, name, industry, profile ON accounts
WHEN OLD.id IS NOT NEW.id OR OLD.name IS NOT NEW.name OR OLD.industry IS NOT NEW.industry
    OR OLD.profile IS NOT NEW.profile
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'text_version';
END;
CREATE TRIGGER needs_text_insert AFTER INSERT ON needs
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'text_version';
END;
CREATE TRIGGER needs_text_delete AFTER DELETE ON needs
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'text_version';
END;
CREATE TRIGGER needs_text_update AFTER UPDATE OF id, text ON needs
WHEN OLD.id IS NOT NEW.id OR OLD.text IS NOT NEW.text
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'text_version';
END;

-- catalog_version goes up with any change to what matching's in-memory catalog reads,
-- except reference_requests: approving a request then refreshes only the advocates'
-- slot counts instead of reloading the whole catalog.
INSERT INTO meta (key, value) VALUES ('catalog_version', '0');
CREATE TRIGGER accounts_catalog_insert AFTER INSERT ON accounts
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER accounts_catalog_update AFTER UPDATE ON accounts
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER accounts_catalog_delete AFTER DELETE ON accounts
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER stage_history_catalog_insert AFTER INSERT ON stage_history
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER stage_history_catalog_update AFTER UPDATE ON stage_history
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER stage_history_catalog_delete AFTER DELETE ON stage_history
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER needs_catalog_insert AFTER INSERT ON needs
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER needs_catalog_update AFTER UPDATE ON needs
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER needs_catalog_delete AFTER DELETE ON needs
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER advocates_catalog_insert AFTER INSERT ON advocates
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER advocates_catalog_update AFTER UPDATE ON advocates
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER advocates_catalog_delete AFTER DELETE ON advocates
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER risk_scores_catalog_insert AFTER INSERT ON risk_scores
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER risk_scores_catalog_update AFTER UPDATE ON risk_scores
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER risk_scores_catalog_delete AFTER DELETE ON risk_scores
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER risk_episodes_catalog_insert AFTER INSERT ON risk_episodes
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER risk_episodes_catalog_update AFTER UPDATE ON risk_episodes
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;
CREATE TRIGGER risk_episodes_catalog_delete AFTER DELETE ON risk_episodes
BEGIN
    UPDATE meta SET value = CAST(value AS INTEGER) + 1 WHERE key = 'catalog_version';
END;

-- The address AWS received each Function URL request from (`requestContext.http.sourceIp`),
-- kept beside the address the request asked for: a request without `ip` moves the rule to it.
ALTER TABLE ip_update_audit ADD COLUMN source_ip text;

-- berth's router, inside nginx (lua-nginx-module).  The engine owns the
-- table; this code only reads it per request and applies what the engine
-- sends over the control socket.  docs/nginx.md tells the design; the
-- table's format is in server/router.h.
--
-- Shared dictionaries (one copy for all workers, kept across reloads):
--   berth_routes  "v" -> table version
--                 "g" -> generation, bumped by every change (the
--                        workers' caches of routes by host hold for one)
--                 "h:HOST" -> APP            exact host
--                 "w:.SUFFIX" -> APP         wildcard "*.SUFFIX"
--                    (either: "APP static" for a host that takes the
--                    app's static folder, when it has one)
--                 "a:APP" -> "APP KIND ..."  the app's route
--                 "s:APP" -> "APP static REL ROOT"  the static folder
--                    beside a live route (Keter's static-files next
--                    to a webapp)
--   berth_counts  "i:APP:REL" requests of a release in flight
--                 "d:APP:REL" requests of a release finished
--                 "log:dropped" router log lines nobody took

local ngx = ngx
local balancer = require "ngx.balancer"
local ffi = require "ffi"

local routes = ngx.shared.berth_routes
local counts = ngx.shared.berth_counts
local find, format, sub = string.find, string.format, string.sub
local concat, tonumber, tostring = table.concat, tonumber, tostring
local floor = math.floor

ffi.cdef [[
unsigned int geteuid(void);
int socket(int domain, int type, int protocol);
int connect(int fd, const void *addr, unsigned int len);
int close(int fd);
int access(const char *path, int mode);
struct berth_sockaddr_un { unsigned short family; char path[108]; };
]]

local M = {}

-- Parsed routes, per worker, by their text ("APP KIND ...").  A route's
-- text changes whenever anything in it does, so an entry never goes stale;
-- the cache is dropped when it grows past a bound.
local parsed, nparsed = {}, 0

local messages = {
	stopped = "app is stopped",
	noweb = "no web process",
	crashing = "app is crashing",
	maintenance = "app is under maintenance",
	starting = "app is starting",
}

-- "PROC:PORT ... HOST@ADDR:PORT ..." into groups (the ports of one
-- process; another host of the cluster is one group, its port the
-- string "ADDR:PORT") and a flat list of { group, index } in order.
local function peer_groups(peers, rel)
	local groups, byname, all, nlocal = {}, {}, {}, 0
	for tok in peers:gmatch("%S+") do
		local proc, addr, port = tok:match("^([%w._-]+)@([%d.]+):(%d+)$")
		local key, name
		if proc then
			key, name = addr .. ":" .. port, "@" .. proc
		else
			proc, port = tok:match("^([%w._-]+):(%d+)$")
			key, name = tonumber(port), proc
		end
		if key then
			local g = byname[name]
			if not g then
				g = { proc = proc, ports = {}, good = 1, rel = rel,
					remote = addr ~= nil }
				byname[name] = g
				groups[#groups + 1] = g
				if not addr then
					nlocal = nlocal + 1
				end
			end
			g.ports[#g.ports + 1] = key
			all[#all + 1] = { g, #g.ports }
		end
	end
	return groups, all, nlocal
end

-- A peer: a port here, or "ADDR:PORT" of another host's route listener.
local function set_peer(port)
	if type(port) == "number" then
		return balancer.set_current_peer("127.0.0.1", port)
	end
	local addr, p = port:match("^(.+):(%d+)$")
	return balancer.set_current_peer(addr, tonumber(p))
end

local function parse(text)
	local p = parsed[text]
	if p then
		return p
	end
	local app, kind, rest = text:match("^(%S+) (%a+) ?(.*)$")
	if not app then
		return nil
	end
	p = { app = app, kind = kind }
	if kind == "live" then
		local rel, peers = rest:match("^(%d+) ?(.*)$")
		local frel, fpeers
		if peers then
			local a, b = peers:find(" ?fallback ")
			if a then
				frel, fpeers = peers:sub(b + 1):match("^(%d+) (.*)$")
				peers = peers:sub(1, a - 1)
			end
		end
		p.rel = rel or "0"
		p.ikey = "i:" .. app .. ":" .. p.rel
		p.dkey = "d:" .. app .. ":" .. p.rel
		p.groups, p.all, p.nlocal = peer_groups(peers or "", p.rel)
		p.rr, p.prr = 0, 0
		if #p.all == 0 then
			p.kind = "noweb"
		end
		-- the release before, during the watch after a switch: tried
		-- only when no port of this one takes the connection
		if fpeers then
			local _, fall = peer_groups(fpeers, frel)
			p.fallback = fall
			p.fikey = "i:" .. app .. ":" .. frel
			p.fdkey = "d:" .. app .. ":" .. frel
		end
		-- one port here and no release to fall back on: the public
		-- balancer's fast path takes it (M.balance_public); another
		-- host's route listener ("ADDR:PORT") goes the long way
		if #p.all == 1 and not fpeers and
		   type(p.all[1][1].ports[1]) == "number" then
			p.one = p.all[1][1].ports[1]
		end
	elseif kind == "static" then
		p.rel, p.root = rest:match("^(%d+) (/.*)$")
		if not p.root then
			return nil
		end
	elseif kind == "crashing" or kind == "starting" then
		p.retry = tonumber(rest) or 5
	elseif not messages[kind] then
		return nil
	end
	if nparsed >= 1000 then
		parsed, nparsed = {}, 0
	end
	parsed[text] = p
	nparsed = nparsed + 1
	return p
end

-- Exact host first, then the longest wildcard: for a.b.example.com,
-- "*.b.example.com", then "*.example.com", then "*.com".  The entry is
-- "APP", or "APP static" (see route_of).
local function app_of(host)
	local app = routes:get("h:" .. host)
	if app then
		return app
	end
	local i = find(host, ".", 1, true)
	while i do
		app = routes:get("w:" .. sub(host, i))
		if app then
			return app
		end
		i = find(host, ".", i + 1, true)
	end
	return nil
end

-- The app of host, its route's text and that route's key: for a host
-- of the app's static folder, the folder's route ("s:APP") while the
-- app has one, else the app's ("a:APP").
local function route_of(host)
	local v = app_of(host)
	if not v then
		return nil
	end
	local sp = find(v, " ", 1, true)
	if sp then
		local app = sub(v, 1, sp - 1)
		local skey = "s:" .. app
		local text = routes:get(skey)
		if text then
			return app, text, skey
		end
		v = app
	end
	local key = "a:" .. v
	return v, routes:get(key), key
end

local function answer(status, msg, retry)
	ngx.status = status
	ngx.header["Content-Type"] = "text/plain"
	ngx.header["Cache-Control"] = "no-store"
	if retry then
		ngx.header["Retry-After"] = tostring(retry)
	end
	ngx.print(msg, "\n")
	return ngx.exit(status)
end

-- access phase of the public (probe false) and the probe server.
-- 1 if a part of the path starts with '.', .well-known/ excepted
local function dotfile(uri)
	local i = 1
	while true do
		local s = uri:find("/.", i, true)
		if not s then
			return false
		end
		if uri:sub(s + 1, s + 12) ~= ".well-known/" then
			return true
		end
		i = s + 1
	end
end

function M.access(probe, route_listener)
	local ctx = ngx.ctx
	local host = ngx.var.host
	-- another host's request (route: group), or the engine's probe:
	-- this host's processes only, never another host's
	ctx.local_only = probe or route_listener
	local app, text, key = route_of(host)
	if not app then
		return answer(404, "no app for this host")
	end
	ctx.app, ctx.host = app, host
	local p = text and parse(text)
	if not p then
		return answer(404, "no app for this host")
	end
	if probe then
		local peer = ngx.var.http_x_berth_peer
		if peer then
			local port = tonumber(peer)
			if not port or port < 1 or port > 65535 then
				return answer(400, "bad X-Berth-Peer")
			end
			ctx.peer = port
			ctx.probe = true
			return
		end
		ctx.probe = true
	end
	local kind = p.kind
	if kind == "live" and ctx.local_only and p.nlocal == 0 and not ctx.peer then
		kind = "noweb"
	end
	if kind == "live" and probe then
		ctx.route = p
		return
	end
	if kind == "live" then
		-- Counted before it is routed, then checked again: if the
		-- engine switched in between, it saw this request or this
		-- request sees the switch (the dictionary is one lock).
		for _ = 1, 3 do
			counts:incr(p.ikey, 1, 0)
			local now = routes:get(key)
			if now == text then
				break
			end
			counts:incr(p.ikey, -1, 0)
			p = now and parse(now)
			if not p or p.kind ~= "live" then
				return M.access(probe)
			end
			text = now
		end
		ctx.route = p
		ctx.ikey, ctx.dkey = p.ikey, p.dkey
		return
	end
	if kind == "static" then
		-- never a dotfile (.env, .git*, .berth/, .profile.d/): a
		-- pusher's secrets and berth's own files; .well-known/ (RFC
		-- 8615) is public by definition
		if dotfile(ngx.var.uri) then
			return ngx.exit(404)
		end
		ngx.var.berth_app = app
		ngx.var.berth_release = p.rel
		ngx.var.berth_root = p.root
		return ngx.exec("@berth_static")
	end
	ctx.deny = kind
	return answer(503, messages[kind], p.retry)
end

-- access phase of the answer listener: what the balancer of a public
-- listener sent here is not a live release.  Looked up again: a static
-- release is served from its folder, anything else gets its short page.
-- A route that went live in between is answered as starting (the request
-- was decided before).
function M.answer()
	local app, text = route_of(ngx.var.host)
	local p = text and parse(text)
	if not p then
		return answer(404, "no app for this host")
	end
	local ctx = ngx.ctx
	ctx.app = app
	local kind = p.kind
	if kind == "static" then
		ctx.app = nil
		if dotfile(ngx.var.uri) then
			ngx.var.berth_app = app
			ngx.var.berth_release = p.rel
			return ngx.exit(404)
		end
		ngx.var.berth_app = app
		ngx.var.berth_release = p.rel
		ngx.var.berth_root = p.root
		return ngx.exec("@berth_static")
	end
	if kind == "live" then
		ctx.deny = "starting"
		return answer(503, messages.starting, 1)
	end
	ctx.deny = kind
	return answer(503, messages[kind], p.retry)
end

-- Ports that refused a connection, per worker: skipped for a second
-- unless every port is (a process died; the engine will route around
-- it), so a dead process costs one error line per worker per second.
local down = {}
local DOWN_FOR = 1

-- Round robin over the processes; within a process (two ports while
-- old-style slot pairs are in use), the port that answered last.
-- On a retry, every port not tried yet, in order.
-- A port of the release before (the watch): the request counts for it
-- from now on, so its drain waits for this request too.
local function to_fallback(ctx, p, k)
	local f = p.fallback[k]
	local g, i = f[1], f[2]
	if not ctx.tried then
		ctx.tried = {}
	end
	if ctx.ikey == p.ikey then
		counts:incr(p.ikey, -1, 0)
		counts:incr(p.fikey, 1, 0)
		ctx.ikey, ctx.dkey = p.fikey, p.fdkey
	end
	ctx.tried[g.ports[i]] = true
	ctx.group, ctx.index = g, i
	return set_peer(g.ports[i])
end

-- The public listeners have no access phase (a phase costs every
-- request a coroutine): the balancer looks the route up itself, counts the
-- request, and sends whatever is not a live release's (a static site, a
-- 404 or 503 page) to the answer listener, which looks again and answers.
local answer_peer

-- Routes by host, per worker, for the table generation "g" they were
-- read in: any change of the table bumps it, and the next request drops
-- them all.  So a request reads one number, not the host's and the app's
-- entries (bounded: random Host headers cannot grow it for long).
local by_host, by_host_gen, by_host_n = {}, nil, 0

local function lookup(host)
	local _, text = route_of(host)
	return text and parse(text) or false
end

local function route_public(ctx)
	local host = ngx.var.host
	local gen = routes:get("g")
	if gen ~= by_host_gen or by_host_n >= 1000 then
		by_host, by_host_gen, by_host_n = {}, gen, 0
	end
	local p = by_host[host]
	if p == nil then
		p = lookup(host)
		by_host[host] = p
		by_host_n = by_host_n + 1
	end
	-- Counted before it is routed, then checked again: if the engine
	-- changed the table in between, it saw this request or this request
	-- sees the change (the dictionary is one lock; "g" moves last).
	for _ = 1, 3 do
		if not p or p.kind ~= "live" then
			break
		end
		counts:incr(p.ikey, 1, 0)
		local now = routes:get("g")
		if now == gen then
			ctx.route = p
			ctx.ikey = p.ikey
			return p
		end
		counts:incr(p.ikey, -1, 0)
		gen = now
		p = lookup(host)
	end
	-- the answer listener looks again, answers and logs the line
	ctx.answer = true
	balancer.set_current_peer(answer_peer)
	return nil
end

function M.balance()
	local ctx = ngx.ctx
	local port = ctx.peer
	if port then
		local ok, err = balancer.set_current_peer("127.0.0.1", port)
		if not ok then
			ngx.log(ngx.ERR, "berth: ", err)
		end
		return
	end
	local p = ctx.route
	if not p then
		if ctx.probe or ctx.answer then
			return ngx.exit(ngx.ERROR)
		end
		p = route_public(ctx)
		if not p then
			return
		end
	end
	local all, fallback = p.all, p.fallback
	if not ctx.group then
		local g, i
		local tries = #all + (fallback and #fallback or 0)
		if tries > 1 then
			balancer.set_more_tries(tries - 1)
		end
		if ctx.probe then
			-- the probe visits every port in turn
			-- (this host's only)
			for _ = 1, #all do
				p.prr = p.prr % #all + 1
				g, i = all[p.prr][1], all[p.prr][2]
				if not g.remote then
					break
				end
			end
		else
			local groups, n = p.groups, #p.groups
			local up = false
			local only = ctx.local_only
			for _ = 1, n do
				p.rr = p.rr % n + 1
				g = groups[p.rr]
				local du = down[g.ports[g.good]]
				if (not du or du < ngx.now()) and
				    not (only and g.remote) then
					up = true
					break
				end
			end
			if not up and only then
				for k = 1, n do
					if not groups[k].remote then
						g = groups[k]
						break
					end
				end
			end
			if not up and fallback then
				return to_fallback(ctx, p, 1)
			end
			i = g.good
		end
		-- ctx.tried is made on a retry only: most requests have none
		ctx.group, ctx.index = g, i
		set_peer(g.ports[i])
		return
	end
	-- a retry: the last port failed
	local g = ctx.group
	local tried = ctx.tried
	if not tried then
		tried = { [g.ports[ctx.index]] = true }
		ctx.tried = tried
	end
	down[g.ports[ctx.index]] = ngx.now() + DOWN_FOR
	local n = #g.ports
	for k = 1, n do
		local i = (ctx.index + k - 1) % n + 1
		if not tried[g.ports[i]] then
			tried[g.ports[i]] = true
			if not ctx.probe then
				g.good = i
			end
			ctx.index = i
			set_peer(g.ports[i])
			return
		end
	end
	for k = 1, #all do
		local gg, i = all[k][1], all[k][2]
		if not tried[gg.ports[i]] and
		    not (ctx.local_only and gg.remote) then
			tried[gg.ports[i]] = true
			ctx.group, ctx.index = gg, i
			set_peer(gg.ports[i])
			return
		end
	end
	for k = 1, fallback and #fallback or 0 do
		local f = fallback[k]
		if not tried[f[1].ports[f[2]]] then
			return to_fallback(ctx, p, k)
		end
	end
	return ngx.exit(ngx.ERROR)
end

-- The public listeners' balancer.  Fast path, for a live route with one
-- port and no release to fall back on (one web process, outside a
-- watch): the worker's cached route of the host, counted, the
-- generation checked again, the peer set.  Nothing in ngx.ctx (a table
-- made per request), and no log phase after it: in own mode, nginx's
-- access_log writes the request's router log line, and the engine names
-- its release from the upstream port.  One port means no retry, so the
-- balancer is not called again for this request.  Anything else takes
-- M.balance().
function M.balance_public()
	local gen = routes:get("g")
	if gen == by_host_gen then
		local p = by_host[ngx.var.host]
		local port = p and p.one
		if port then
			counts:incr(p.ikey, 1, 0)
			if routes:get("g") == gen then
				return balancer.set_current_peer("127.0.0.1",
								 port)
			end
			counts:incr(p.ikey, -1, 0)
		end
	end
	return M.balance()
end

-- Router log lines: one per request, buffered per worker and sent to the
-- engine in batches over a unix stream socket.  Nothing here may log to
-- nginx's error log: an engine that is away is not nginx's error.
local log_path
local log_buf, log_n, log_bytes = {}, 0, 0
local log_timer = false
local log_backoff_until, log_backoff = 0, 0.5
local LOG_FLUSH = 0.1
local LOG_MAX_BYTES = 4 * 1024 * 1024
local LOG_BATCH = 60000

local function flush(premature)
	log_timer = false
	if log_n == 0 then
		return
	end
	local lines = log_buf
	log_buf, log_n, log_bytes = {}, 0, 0
	if ngx.now() < log_backoff_until then
		counts:incr("log:dropped", #lines, 0)
		return
	end
	-- No socket, no engine reading: nginx would log the failed
	-- connect() itself, so look first.  A socket nobody listens on
	-- (an engine that died) does get logged: back off, up to 5 s.
	if ffi.C.access(log_path, 2) ~= 0 then
		counts:incr("log:dropped", #lines, 0)
		return
	end
	local sock = ngx.socket.tcp()
	sock:settimeout(1000)
	if not sock:connect("unix:" .. log_path) then
		log_backoff_until = ngx.now() + log_backoff
		log_backoff = log_backoff < 5 and log_backoff * 2 or 5
		counts:incr("log:dropped", #lines, 0)
		return
	end
	log_backoff = 0.5
	-- batches of whole lines, each at most LOG_BATCH bytes
	local first, size = 1, 0
	for i = 1, #lines + 1 do
		local l = lines[i]
		if not l or (size + #l > LOG_BATCH and i > first) then
			local sent = sock:send(concat(lines, "", first, i - 1))
			if not sent then
				counts:incr("log:dropped", #lines - first + 1, 0)
				sock:close()
				log_backoff_until = ngx.now() + log_backoff
				log_backoff = log_backoff < 5 and
					log_backoff * 2 or 5
				return
			end
			first, size = i, 0
		end
		if l then
			size = size + #l
		end
	end
	if premature then
		sock:close()
	else
		sock:setkeepalive(0, 1)
	end
end

local function queue(line)
	if log_bytes + #line > LOG_MAX_BYTES then
		counts:incr("log:dropped", 1, 0)
		return
	end
	log_n = log_n + 1
	log_buf[log_n] = line
	log_bytes = log_bytes + #line
	if not log_timer then
		local ok = ngx.timer.at(LOG_FLUSH, flush)
		log_timer = ok and true or false
	end
end

local function record(app, host, addr, id, proc, port, rel, deny)
	local var = ngx.var
	local uri = var.request_uri or "/"
	if #uri > 2048 then
		uri = sub(uri, 1, 2048)
	end
	queue(app .. "\0" .. ngx.req.get_method() .. "\0" .. uri ..
		"\0" .. (host or "") .. "\0" .. id .. "\0" ..
		addr .. "\0" .. ngx.status .. "\0" ..
		var.body_bytes_sent .. "\0" ..
		floor((ngx.now() - ngx.req.start_time()) * 1000) .. "\0" ..
		proc .. "\0" .. port .. "\0" .. rel .. "\0" ..
		(deny or "") .. "\n")
end

-- One record per request, NUL-separated fields, formatted into Heroku's
-- router line by the engine (routerlog.h):
--   APP METHOD URI HOST REQUEST_ID ADDR STATUS BYTES MS PROC PORT REL DENY
-- nginx refuses NUL, CR and LF in a request line and a Host, so no field
-- holds a separator.  The log phase of system mode's public listener
-- (routed in the access phase): it also counts a live release's request
-- finished (the access phase counted it).
function M.log()
	local ctx = ngx.ctx
	if ctx.dkey then
		counts:incr(ctx.dkey, 1, 0)
	end
	if ctx.probe or not log_path then
		return
	end
	local var = ngx.var
	local app, rel, proc, port = ctx.app, "0", "-", "0"
	local g = ctx.group
	if g then
		rel, proc, port = g.rel, g.proc, g.ports[ctx.index]
	elseif not app then
		-- a static release that the access phase served (ngx.exec()
		-- left no ctx), or no app
		app = var.berth_app
		if not app or app == "" then
			return
		end
		rel, proc = var.berth_release, "static"
	elseif ctx.route then
		rel = ctx.route.rel
	end
	record(app, ctx.host or var.host, var.remote_addr, var.request_id,
	       proc, port, rel, ctx.deny)
end

-- The log phase of own mode's answer listener: the public listener's
-- balancer sent it a request that no live release takes (a static
-- release, a 404 or 503 page).  Its client's address and request id come
-- from the public listener's headers (only nginx's workers reach this
-- listener); a request of no app (404) gets no line.
function M.log_answer()
	if not log_path then
		return
	end
	local ctx = ngx.ctx
	local var = ngx.var
	local app, rel, proc = ctx.app, "0", "-"
	if not app then
		-- a static release: ngx.exec() left no ctx
		app = var.berth_app
		if not app or app == "" then
			return
		end
		rel, proc = var.berth_release, "static"
	end
	record(app, var.host, var.http_x_real_ip or "-",
	       var.http_x_request_id or var.request_id, proc, "0", rel,
	       ctx.deny)
end

-- The table: applied from the engine's text (see router.h), in order,
-- after the whole text parsed.  full: the text is the whole table, and
-- every route or host it does not name is removed.
local function apply(body, full)
	local ops, version = {}, nil
	for line in body:gmatch("[^\n]+") do
		local w1, rest = line:match("^(%S+) ?(.*)$")
		if w1 == "version" then
			version = tonumber(rest)
			if not version then
				return nil, "bad version line"
			end
		elseif w1 == "route" then
			local app = rest:match("^(%S+) ")
			if not app or not parse(rest) then
				return nil, "bad route line: " .. line
			end
			ops[#ops + 1] = { "a:" .. app, rest }
		elseif w1 == "unroute" then
			ops[#ops + 1] = { "a:" .. rest, false }
		elseif w1 == "static" then
			-- "static APP REL ROOT": stored as its route's text
			local app, rr = rest:match("^(%S+) (.*)$")
			local text = app and app .. " static " .. rr
			local p = text and parse(text)
			if not p or p.kind ~= "static" then
				return nil, "bad static line: " .. line
			end
			ops[#ops + 1] = { "s:" .. app, text }
		elseif w1 == "unstatic" then
			ops[#ops + 1] = { "s:" .. rest, false }
		elseif w1 == "host" or w1 == "unhost" then
			local host, app, what = rest:match("^(%S+) ?(%S*) ?(%S*)$")
			if not host or (w1 == "host" and app == "") or
			    (what ~= "" and (w1 ~= "host" or what ~= "static")) then
				return nil, "bad host line: " .. line
			end
			if what ~= "" then
				app = app .. " static"
			end
			local key
			if sub(host, 1, 2) == "*." then
				key = "w:" .. sub(host, 2)
			else
				key = "h:" .. host
			end
			ops[#ops + 1] = { key, w1 == "host" and app }
		elseif w1 == "forget" then
			local app, rel = rest:match("^(%S+) (%d+)$")
			if not app then
				return nil, "bad forget line: " .. line
			end
			ops[#ops + 1] = { "forget", app, rel }
		elseif w1 == "purge" then
			if rest == "" then
				return nil, "bad purge line"
			end
			ops[#ops + 1] = { "purge", rest }
		elseif w1 and sub(w1, 1, 1) ~= "#" then
			return nil, "unknown line: " .. line
		end
	end
	if full and not version then
		return nil, "no version line"
	end
	-- a change this table has already (nginx loaded a newer file, or a
	-- request the engine gave up on came late): nothing to do
	local cur = routes:get("v")
	if not full and version and cur and version <= cur then
		return cur
	end
	local keep = full and {}
	for _, op in ipairs(ops) do
		if op[1] == "forget" then
			counts:delete("i:" .. op[2] .. ":" .. op[3])
			counts:delete("d:" .. op[2] .. ":" .. op[3])
		elseif op[1] == "purge" then
			local i, d = "i:" .. op[2] .. ":", "d:" .. op[2] .. ":"
			for _, k in ipairs(counts:get_keys(0)) do
				local pre = sub(k, 1, #i)
				if pre == i or pre == d then
					counts:delete(k)
				end
			end
		elseif op[2] then
			local ok, err = routes:safe_set(op[1], op[2])
			if not ok then
				routes:incr("g", 1, 0)	-- what was set counts
				return nil, "cannot store " .. op[1] .. ": " .. err
			end
			if keep then
				keep[op[1]] = true
			end
		else
			routes:delete(op[1])
		end
	end
	if keep then
		-- routes first were set, so a host never points nowhere
		for _, k in ipairs(routes:get_keys(0)) do
			if k ~= "v" and k ~= "g" and not keep[k] and
			    sub(k, 1, 2) ~= "a:" then
				routes:delete(k)
			end
		end
		for _, k in ipairs(routes:get_keys(0)) do
			if k ~= "v" and k ~= "g" and not keep[k] then
				routes:delete(k)
			end
		end
	end
	if version then
		routes:set("v", version)
	end
	-- last: a worker that sees the new generation sees every change
	routes:incr("g", 1, 0)
	return version or routes:get("v") or 0
end

local function read_body()
	ngx.req.read_body()
	local body = ngx.req.get_body_data()
	if body then
		return body
	end
	local file = ngx.req.get_body_file()
	if not file then
		return ""
	end
	local f = io.open(file, "rb")
	if not f then
		return nil
	end
	body = f:read("*a")
	f:close()
	return body
end

-- A release's requests: "i" counts those routed to it (the balancer or
-- the access phase), "d" those finished (system mode's log phase; own
-- mode has no log phase, and the engine counts its router log lines).
-- Answered as in flight (routed, not finished) and finished.
local function count_of(app, rel)
	local i = counts:get("i:" .. app .. ":" .. rel) or 0
	local d = counts:get("d:" .. app .. ":" .. rel) or 0
	return i - d, d
end

-- The control server (unix socket, reachable by the engine only).
--   POST /update, /replace   the table (see apply); answers "ok VERSION"
--                            and, for every route it replaced that was
--                            live, "was APP REL INFLIGHT DONE"
--   GET /counts?app=A&release=N   "counts INFLIGHT DONE"
--   GET /status              "version V uid U dropped N boot B" (B:
--                            when the counts began, in ms)
function M.control()
	local uri = ngx.var.uri
	if uri == "/update" or uri == "/replace" then
		if ngx.req.get_method() ~= "POST" then
			return answer(405, "POST only")
		end
		local body = read_body()
		if not body then
			return answer(500, "cannot read the body")
		end
		-- the live release each route had before, for drain counts
		local was = {}
		for app in body:gmatch("\nroute (%S+) ") do
			local old = routes:get("a:" .. app)
			local p = old and parse(old)
			if p and p.kind == "live" then
				was[#was + 1] = { app, p.rel }
			end
		end
		local v, err = apply(body, uri == "/replace")
		if not v then
			return answer(400, "error: " .. err)
		end
		local out = { "ok " .. format("%d", v) }
		for _, w in ipairs(was) do
			local i, d = count_of(w[1], w[2])
			out[#out + 1] = format("was %s %s %d %d", w[1], w[2], i, d)
		end
		ngx.header["Content-Type"] = "text/plain"
		ngx.print(concat(out, "\n"), "\n")
		return
	end
	if uri == "/counts" then
		local args = ngx.req.get_uri_args(4)
		local app, rel = args.app, tonumber(args.release)
		if type(app) ~= "string" or not rel then
			return answer(400, "error: want app and release")
		end
		local i, d = count_of(app, format("%d", rel))
		ngx.header["Content-Type"] = "text/plain"
		ngx.print(format("counts %d %d\n", i, d))
		return
	end
	if uri == "/status" then
		ngx.header["Content-Type"] = "text/plain"
		ngx.print(format("version %d uid %d dropped %d boot %d\n",
			routes:get("v") or 0, ffi.C.geteuid(),
			counts:get("log:dropped") or 0,
			counts:get("boot") or 0))
		return
	end
	return answer(404, "error: no such call")
end

-- A unix socket file left by a master that was killed keeps the next one
-- from binding it.  Remove it only if nothing listens there: on a reload
-- the listening socket is live and must keep its name.
local function clear_stale(path)
	if not path or #path >= 108 then
		return
	end
	-- AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC
	local fd = ffi.C.socket(1, 1 + 2048 + 524288, 0)
	if fd < 0 then
		return
	end
	local sa = ffi.new("struct berth_sockaddr_un")
	sa.family = 1
	ffi.copy(sa.path, path)
	local rc = ffi.C.connect(fd, sa, ffi.sizeof(sa))
	local err = ffi.errno()
	ffi.C.close(fd)
	if rc ~= 0 and err == 111 then	-- ECONNREFUSED
		os.remove(path)
	end
end

-- init_by_lua, in the master before it forks workers: load the table the
-- engine wrote, unless the dictionary (kept across a reload) already has
-- this version or a newer one.
function M.init(table_path, logsock, sockets, answer_sock)
	log_path = logsock
	-- when the counts began: a reload keeps them, a new master not
	counts:add("boot", floor(ngx.now() * 1000))
	if answer_sock and answer_sock ~= "" then
		answer_peer = "unix:" .. answer_sock
	end
	for _, path in ipairs(sockets or {}) do
		clear_stale(path)
	end
	local f = io.open(table_path, "rb")
	if not f then
		return
	end
	local body = f:read("*a")
	f:close()
	local v = tonumber(body:match("\nversion (%d+)"))
	local have = routes:get("v")
	if v and have and have >= v then
		return
	end
	local ok, err = apply(body, true)
	if not ok then
		ngx.log(ngx.ERR, "berth: cannot load ", table_path, ": ", err)
	end
end

return M

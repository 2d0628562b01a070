-- berth's certificates, inside nginx (lua-nginx-module, ngx.ssl from
-- lua-resty-core).  The engine owns them (server/certs.h); this code
-- picks one per TLS handshake from the server name, redirects plain HTTP
-- to HTTPS for apps that have one, and adds HSTS where asked.  Nothing
-- here needs a reload: a new certificate is one entry in shared memory.
-- docs/https.md tells the design.
--
-- The table (ROOT/nginx/certs, mode 0600, also what the engine POSTs to
-- /certs on the control listener; always the whole of it), per app:
--   cert APP GEN REDIRECT HSTS NAME...
--   PEM lines of the chain
--   key
--   PEM lines of the key
--   end
-- GEN changes with every new certificate of APP; REDIRECT is 0 or 1;
-- HSTS is a max-age in seconds, 0 for none; NAMEs are the DNS names the
-- certificate covers ("*.example.com" included).  Workers never read the
-- key files: the master reads this table at start (as root), later
-- changes come in the POST.
--
-- Shared dictionary berth_certs:
--   "g:APP" -> GEN    "p:APP" -> chain PEM .. "\0" .. key PEM
--   "o:APP" -> "REDIRECT HSTS"    "n:APP" -> " NAME NAME ... "

local ngx = ngx
local ssl = require "ngx.ssl"

local certs = ngx.shared.berth_certs
local routes = ngx.shared.berth_routes
local find, sub, lower = string.find, string.sub, string.lower

local M = {}
local https_port = 443
-- per worker: APP -> { gen, chain, key } parsed from the dictionary
local parsed = {}

local function read(path)
	local f = io.open(path, "rb")
	if not f then
		return nil
	end
	local s = f:read("*a")
	f:close()
	return s
end

-- The routing table's answer (router.lua): exact host, then the longest
-- wildcard.
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

-- Does the certificate of app name host?  Exact, or "*.rest" for one
-- label in front of rest.
local function covers(app, host)
	local names = certs:get("n:" .. app)
	if not names then
		return false
	end
	if find(names, " " .. host .. " ", 1, true) then
		return true
	end
	local i = find(host, ".", 1, true)
	return i and find(names, " *" .. sub(host, i) .. " ", 1, true) and
		true or false
end

local function store(e)
	if certs:get("g:" .. e.app) ~= e.gen then
		local ok, err = certs:safe_set("p:" .. e.app,
			table.concat(e.chain, "\n") .. "\n\0" ..
			table.concat(e.key, "\n") .. "\n")
		if not ok then
			return nil, "cannot store " .. e.app .. ": " .. err
		end
		certs:set("g:" .. e.app, e.gen)
	end
	certs:set("o:" .. e.app, e.redir .. " " .. e.hsts)
	certs:set("n:" .. e.app, " " .. e.names .. " ")
	return true
end

local function apply(body)
	local seen, e = {}, nil
	for line in body:gmatch("[^\n]+") do
		if e then
			if line == "end" then
				local ok, err = store(e)
				if not ok then
					return nil, err
				end
				seen[e.app] = true
				e = nil
			elseif line == "key" then
				e.part = e.key
			else
				e.part[#e.part + 1] = line
			end
		else
			local app, gen, redir, hsts, names =
				line:match("^cert (%S+) (%d+) ([01]) (%d+) (.+)$")
			if app then
				e = { app = app, gen = gen, redir = redir,
					hsts = hsts, names = names, chain = {},
					key = {} }
				e.part = e.chain
			elseif sub(line, 1, 1) ~= "#" then
				return nil, "bad line: " .. sub(line, 1, 80)
			end
		end
	end
	if e then
		return nil, "no end line for " .. e.app
	end
	for _, k in ipairs(certs:get_keys(0)) do
		if not seen[sub(k, 3)] then
			certs:delete(k)
		end
	end
	return true
end

-- init_by_lua, in the master: the table as the engine last wrote it.
function M.init(table_path, port)
	https_port = port or 443
	local body = read(table_path)
	if body then
		local ok, err = apply(body)
		if not ok then
			ngx.log(ngx.ERR, "berth: cannot load ", table_path, ": ",
				err)
		end
	end
end

-- ssl_certificate_by_lua: the app's certificate for the server name, or
-- the placeholder nginx was configured with.
function M.cert()
	local name = ssl.server_name()
	if not name then
		return
	end
	name = lower(name)
	local app = app_of(name)
	if not app or not covers(app, name) then
		return
	end
	local gen = certs:get("g:" .. app)
	if not gen then
		return
	end
	local c = parsed[app]
	if not c or c.gen ~= gen then
		local pem = certs:get("p:" .. app)
		if not pem then
			return
		end
		local z = find(pem, "\0", 1, true)
		local chain = ssl.parse_pem_cert(sub(pem, 1, z - 1))
		local key = ssl.parse_pem_priv_key(sub(pem, z + 1))
		if not chain or not key then
			ngx.log(ngx.ERR, "berth: unusable certificate of ", app)
			return
		end
		c = { gen = gen, chain = chain, key = key }
		parsed[app] = c
	end
	ssl.clear_certs()
	local ok, err = ssl.set_cert(c.chain)
	if ok then
		ok, err = ssl.set_priv_key(c.key)
	end
	if not ok then
		ngx.log(ngx.ERR, "berth: cannot set the certificate of ", app,
			": ", err)
		return ngx.exit(ngx.ERROR)
	end
end

-- rewrite phase of the plain HTTP listener: to HTTPS when the app has a
-- certificate for this host and asks for it.
function M.redirect()
	local host = ngx.var.host
	local app = app_of(host)
	if not app then
		return
	end
	local o = certs:get("o:" .. app)
	if not o or sub(o, 1, 1) ~= "1" or not covers(app, host) then
		return
	end
	local port = https_port == 443 and "" or ":" .. https_port
	local m = ngx.req.get_method()
	-- 308 keeps a POST a POST; browsers treat both as permanent
	local status = (m == "GET" or m == "HEAD") and 301 or 308
	return ngx.redirect("https://" .. host .. port .. ngx.var.request_uri,
		status)
end

-- header filter of the HTTPS listener: HSTS where the app asks for it.
function M.hsts()
	local app = app_of(ngx.var.host)
	local o = app and certs:get("o:" .. app)
	if not o then
		return
	end
	local age = tonumber(sub(o, 3))
	if age and age > 0 and covers(app, ngx.var.host) then
		ngx.header["Strict-Transport-Security"] = "max-age=" .. age
	end
end

-- POST /certs on the control listener: the whole table.
function M.control()
	if ngx.req.get_method() ~= "POST" then
		ngx.status = 405
		ngx.print("POST only\n")
		return ngx.exit(405)
	end
	ngx.req.read_body()
	local body = ngx.req.get_body_data() or ""
	local ok, err = apply(body)
	ngx.header["Content-Type"] = "text/plain"
	if not ok then
		ngx.status = 400
		ngx.print("error: ", err, "\n")
		return ngx.exit(400)
	end
	ngx.print("ok\n")
end

return M

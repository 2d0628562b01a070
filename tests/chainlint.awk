# chainlint.awk: refuse a test body whose &&-chain is broken (the idea of
# git's t/chainlint: a command that does not hand on with && lets a failure
# before it pass unseen).  Reads one body on stdin; prints each offending
# line as "line N: text" and exits 1 if there is any.
#
# A logical line (backslash-newlines and multi-line quotes joined, comments
# and here-doc bodies dropped) must end with && || | \ { ( do then else in
# ;; or a case pattern "x)", or be the last one of its block: the next line
# opens with ) } done fi esac else elif then do ;; or the body ends.
# A line ending in a lone & starts a background job: it must not end a
# chain (`a && b &` puts the whole chain in the background), nor may a
# bare `;` join two commands outside a for/if/while head.

function trim(s) { sub(/^[ \t]+/, "", s); sub(/[ \t]+$/, "", s); return s }

# scan(s): strip comments and quoted text from s (one physical line),
# carrying the quoting over from the line before in qs, a stack of the
# open contexts: ' and " quotes, and ( for a $( inside double quotes.
# What is outside every quote goes to stripped (a quoted run reads Q).
function scan(s,    i, c, n, out, prev, top) {
	out = ""
	n = length(s)
	prev = " "
	for (i = 1; i <= n; i++) {
		c = substr(s, i, 1)
		top = substr(qs, length(qs), 1)
		if (top == "'") {
			if (c == "'") qs = substr(qs, 1, length(qs) - 1)
			prev = c
			continue
		}
		if (c == "\\") {
			if (i == n) { if (qs == "") out = out "\\"; break }
			i++
			if (qs == "") out = out "x"
			prev = "x"
			continue
		}
		if (top == "\"") {
			if (c == "\"") {
				qs = substr(qs, 1, length(qs) - 1)
				if (qs == "") out = out "Q"
			} else if (c == "$" && substr(s, i + 1, 1) == "(") {
				qs = qs "("
				i++
			}
			prev = c
			continue
		}
		if (top == "(" && c == ")") {
			qs = substr(qs, 1, length(qs) - 1)
			prev = c
			continue
		}
		if (c == "'" || c == "\"") { qs = qs c; prev = c; continue }
		if (qs == "" && c == "#" &&
		    (prev == " " || prev == "\t" || prev == ";"))
			break
		if (qs == "") out = out c
		prev = c
	}
	stripped = out
}

function heredoc_start(s,    m, d) {
	# s is the stripped line: quotes are gone, so <<'EOF' reads <<EOF
	if (match(s, /<<-?[ \t]*x?[A-Za-z_][A-Za-z0-9_]*/) &&
	    substr(s, RSTART + 2, 1) != "<") {
		d = substr(s, RSTART + 2, RLENGTH - 2)
		hd_dash = (substr(d, 1, 1) == "-")
		sub(/^-/, "", d)
		d = trim(d)
		return d
	}
	return ""
}

BEGIN { qs = ""; nl = 0 }

{
	raw[NR] = $0
}

END {
	# pass 1: logical lines
	cur = ""; start = 0; hd = ""; hd_raw = ""
	for (r = 1; r <= NR; r++) {
		line = raw[r]
		if (hd != "") {
			t = line
			if (hd_dash) sub(/^\t+/, "", t)
			if (t == hd) hd = ""
			continue
		}
		if (cur == "" && qs == "") start = r
		scan(line)
		cur = cur " " stripped
		if (qs != "")
			continue
		if (cur ~ /\\$/) {
			sub(/\\$/, "", cur)
			continue
		}
		# the delimiter as written: raw text, quotes and backslash removed
		d = heredoc_start(cur)
		if (d != "") {
			rl = raw[r]
			if (match(rl, /<<-?[ \t]*[\\'"]?[A-Za-z_][A-Za-z0-9_]*/)) {
				d = substr(rl, RSTART, RLENGTH)
				sub(/^<<-?[ \t]*[\\'"]?/, "", d)
			}
			hd = d
		}
		t = trim(cur)
		if (t != "") {
			nl++
			L[nl] = t
			LN[nl] = start
			LR[nl] = raw[start]
		}
		cur = ""
	}
	if (qs != "" || hd != "")
		exit 0	# the shell itself will complain

	bad = 0
	depth = 0
	kind[0] = "top"
	contd[0] = 0	# did the command now open at this depth start as
	cont = 0	# a continuation?  does the last line hand on?
	for (i = 1; i <= nl; i++) {
		s = L[i]
		first = s
		sub(/[ \t;&|<>].*$/, "", first)
		started_cont = cont

		# closers pop a block; the command they end began where it opened
		closer = (s ~ /^[)}]/ || first == "done" || first == "fi" ||
			  first == "esac")
		if (kind[depth] == "arm" && (s ~ /^;;/ ))
			closer = 1
		if (closer && depth > 0) {
			if (kind[depth] == "arm" && first == "esac")
				depth--
			started_cont = contd[depth]
			depth--
		}
		if ((first == "else" || first == "elif") && depth > 0) {
			started_cont = contd[depth]
			depth--
		}

		pattern = 0
		if (kind[depth] == "case" && !closer && s ~ /^[^ \t()]*\)/)
			pattern = 1

		ok = 0
		if (s ~ /(&&|\|\||\||\{|\(|;;)$/) ok = 1
		if (s ~ /(^|[ \t;])(do|then|else|in)$/) ok = 1
		if (pattern) ok = 1
		# a failure handled on the spot: a || return 1, a || { ...; exit 1; }
		if (s ~ /\|\|[ \t]*(\{.*[ \t;])?(return|exit)([ \t]+[0-9]+)?[ \t;]*}?$/)
			ok = 1
		if (i == nl) ok = 1
		if (prev_or && s ~ /^(return|exit)([ \t]+[0-9]+)?$/) ok = 1
		if (i < nl) {
			nf = L[i + 1]
			sub(/[ \t;&|<>].*$/, "", nf)
			if (L[i + 1] ~ /^([)}]|;;)/ || nf == "done" || nf == "fi" ||
			    nf == "esac" || nf == "else" || nf == "elif" ||
			    nf == "then" || nf == "do")
				ok = 1
		}
		# background job: fine on its own, not at the end of a chain
		if (s ~ /[^&]&$/) {
			ok = 1
			if (started_cont || s ~ /(&&|\|\|)/) {
				ok = 0
			}
		}
		# a bare ; joining two commands (heads of for/if/while/case and
		# { ...; } groups aside)
		if (ok && !pattern) {
			u = s
			gsub(/;[ \t]*(then|do|else|elif|fi|done|esac)([ \t]|$)/, " ", u)
			gsub(/;;/, " ", u)
			while (match(u, /\{[^{}]*\}/))
				u = substr(u, 1, RSTART - 1) substr(u, RSTART + RLENGTH)
			while (match(u, /\([^()]*\)/))
				u = substr(u, 1, RSTART - 1) substr(u, RSTART + RLENGTH)
			gsub(/;[ \t]*[})]/, " ", u)
			if (u ~ /;/ && u !~ /^(for|while|until|if|case|elif)[ \t]/)
				ok = 0
		}
		if (!ok) {
			printf "line %d: %s\n", LN[i], LR[i]
			bad = 1
		}

		cont = (s ~ /(&&|\|\||[^|]\|)$/)
		prev_or = (s ~ /\|\|$/)
		# openers push a block
		if (s ~ /(\{|\(|(^|[ \t;])(do|then|else))$/ ||
		    (s ~ /(^|[ \t])in$/ && first == "case") || pattern) {
			if (pattern && s ~ /;;$/) {
				# a whole arm on one line
			} else {
				depth++
				kind[depth] = (first == "case" ? "case" : (pattern ? "arm" : "block"))
				contd[depth] = started_cont || (s ~ /(&&|\|\|)/)
				cont = 0
			}
		}
		if (kind[depth] == "arm" && s ~ /;;$/ && !pattern) {
			depth--
			cont = 0
		}
	}
	exit bad
}

# embed.awk: turn Lua scripts into C string macros, one per file, for the
# build: queue_join.lua becomes LUA_QUEUE_JOIN, its text line by line.
#
#   awk -f embed.awk a.lua b.lua > lua_scripts.h

function esc(s,    out, i, c) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\\" || c == "\"")
			out = out "\\"
		out = out c
	}
	return out
}

function close_macro() {
	if (name != "")
		print "\"\"\n"
}

BEGIN {
	print "/* lua_scripts.h: generated from the Lua scripts in src/lua/ by src/lua/embed.awk; do not edit. */"
	print ""
}

FNR == 1 {
	close_macro()
	name = FILENAME
	sub(/.*\//, "", name)
	sub(/\.lua$/, "", name)
	name = "LUA_" toupper(name)
	print "#define " name " \\"
}

{ print "\"" esc($0) "\\n\" \\" }

END { close_macro() }

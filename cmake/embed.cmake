# Writes OUT, a C file defining `const char lua_<name>[]` for each FILES
# entry (node/lua/<name>.lua), NUL-terminated: the Lua scripts are kept in
# their own files and built into the binary. Run with cmake -P.
set(code "/* Generated from node/lua/ by cmake/embed.cmake: do not edit. */\n")
foreach(file ${FILES})
  get_filename_component(name ${file} NAME_WE)
  file(READ ${file} hex HEX)
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND code "extern const char lua_${name}[];\nconst char lua_${name}[] = {${bytes}0x00};\n")
endforeach()
file(WRITE ${OUT} "${code}")

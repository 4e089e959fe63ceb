# Filters `swift test` output for CI logs (drops build progress and per-test start lines) and,
# at the end, names every Swift Testing test that started but never finished: after a hang or
# a crash, that is where to look.
function name(line, prefix, suffix,   s) {
  s = substr(line, length(prefix) + 1)
  s = substr(s, 1, index(s, suffix) - 1)
  sub(/ with [0-9]+ test cases?$/, "", s)
  return s
}
# A parameterized test's cases are not tracked one by one (only the test is).
/^◇ Test case / { next }
/^◇ Test .* started\.$/ && $0 != "◇ Test run started." { running[name($0, "◇ Test ", " started.")] = 1; next }
/^✔ Test .* passed after/ { delete running[name($0, "✔ Test ", " passed after")] }
/^✘ Test .* failed after/ { delete running[name($0, "✘ Test ", " failed after")] }
/^➜ Test .* skipped/ { delete running[name($0, "➜ Test ", " skipped")] }
/^(\[[0-9]+\/[0-9]+\]|Test Case .* (started|passed)|◇ )/ { next }
{ print; fflush() }
END {
  for (t in running) { if (!header++) print "tests that started and did not finish:"; print "  " t }
}

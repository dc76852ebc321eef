"""nbgrader's course configuration for cs231n-vis (labs/README.md, "Coursework").

`make coursework` copies this file into the course directory (build/coursework) beside
source/<assignment>/; every nbgrader command run from there reads it. Settings a lab changes
(the exchange's place, the course id) can also be given on the command line, e.g.
`nbgrader release_assignment 02_filters --Exchange.root=/srv/nbgrader/exchange`.
"""

c = get_config()  # noqa: F821 (nbgrader's config loader defines it)

c.CourseDirectory.course_id = "cs231n-vis"

# The exchange: where released assignments wait and submissions arrive. One folder on the
# server that every student can write to (`install -d -m 1777 /srv/nbgrader/exchange`; on
# Kubernetes a shared read-write volume, labs/z2jh/config.yaml). With the course id in the path,
# two courses on one hub do not see each other's assignments.
c.Exchange.root = "/srv/nbgrader/exchange"
c.Exchange.path_includes_course = True

# Per-cell timeout of the grading kernel. The slowest cell of the course is notebook 01's
# training: ~27 s on 2 idle cores, ~52 s on one thread (a lab's quota or a busy grading server).
# nbgrader's default (30 s) would time it out, and a timed-out cell scores 0 together with every
# check after it. 300 s is ~6x the one-thread time: room for a grading server shared with
# students (the measured cells ran 2-3x slower on a loaded 2-core machine), while a cell that
# really hangs (a student's infinite loop) still fails within five minutes.
c.Execute.timeout = 300
# After a cell's reply, nbclient waits iopub_timeout (default 4 s) for the cell's last outputs,
# and nbgrader makes a miss fatal (raise_on_iopub_timeout): the whole notebook fails to grade.
# Measured here: the ten-notebook check on a loaded 2-core machine (load average 20) lost
# notebook 01's training cell this way ("Timeout waiting for IOPub output" after 4 s).
c.Execute.iopub_timeout = 60

# nbgrader scores a check cell 0 when it writes anything to stderr. The notebooks print nothing
# to stderr in a normal run, but a fresh account or server prints a few harmless lines once;
# these exact messages are removed from the grading kernel's stderr (and nothing else):
#  - matplotlib's first import in a new home directory builds its font cache,
#  - tqdm.auto outside a front-end that shows widgets (the notebooks pass progress=False,
#    a student's own call may not).
# A pattern removes a whole stderr output that it matches anywhere, so keep them this exact.
c.IgnorePattern.enabled = True
c.IgnorePattern.pattern = "|".join([
    r"Matplotlib is building the font cache; this may take a moment\.",
    r"IProgress not found\. Please update jupyter and ipywidgets\.",
])

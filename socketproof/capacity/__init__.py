"""The capacity check: steps of users until the SLO breaks, the result, the release gate.

`steps` is the pure stepping logic (StepController, the stop rule, the comparison with a
baseline), `shape` plugs it into Locust (a LoadTestShape, the step prints, the exit code),
`report` writes capacity.json/.png/.html (`markers` places each --disrupt on its plot), and
`options` declares its command-line options.
"""

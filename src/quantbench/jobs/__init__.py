"""The job runners, one module per kind of job (quantize, evaluate, benchmark), each given its typed run
(quantbench.plan) by its workflow script; `variant` holds the loaded model's lifecycle they share."""

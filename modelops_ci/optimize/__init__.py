"""Decision-optimization models: a formulation (a linear or mixed-integer program), solved by a
solver, its solution checked independently of the solver's word."""

"""Domain rules evaluated over whole trees as arrays (numpy), where a request must read a
team of a million members at once. Each function here computes exactly what its rule in
`service/domain/` decides, in integer arithmetic, and a differential property test keeps
the two equal (tests/compute/)."""

OPENQASM 3.0;
include "stdgates.inc";
bit[1] m;
qubit[1] q;
x q[0];
h q[0];
id q[0];
h q[0];
m[0] = measure q[0];


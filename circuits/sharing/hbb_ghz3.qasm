OPENQASM 3.0;
include "stdgates.inc";
qubit[3] party;
h party[0];
cx party[0], party[1];
cx party[1], party[2];
id party[0];
id party[1];
id party[2];


OPENQASM 3.0;
include "stdgates.inc";
bit[2] bsm;
qubit[2] photon;
qubit[3] relay;
x photon[0];
id photon[0];
id photon[1];
ry(pi) relay[0];
h relay[2];
cx relay[2], relay[1];
cswap relay[0], photon[0], relay[1];
cx photon[0], photon[1];
h photon[0];
bsm[0] = measure photon[0];
bsm[1] = measure photon[1];


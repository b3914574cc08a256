OPENQASM 3.0;
include "stdgates.inc";
bit[2] bsm;
qubit[2] photon;
qubit[1] relay;
id photon[0];
id photon[1];
h photon[0];
cx photon[0], relay[0];
h photon[0];
cx photon[0], photon[1];
h photon[0];
bsm[0] = measure photon[0];
bsm[1] = measure photon[1];


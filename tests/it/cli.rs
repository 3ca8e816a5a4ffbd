fn z(){}
